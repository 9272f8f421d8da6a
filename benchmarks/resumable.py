"""One long fit split over several commands of limited length (device sessions).

    python -m benchmarks resume --method amm --dataset mnist60k --seed 0 --dir DIR \\
        --device cuda --budget 540 [--params JSON]

Each call works on the fit kept in ``DIR`` and stops ``--budget`` seconds after it began:

- the first call starts the fit (``n_init=1``, ``checkpoint_path=DIR/checkpoint.joblib``,
  saved after every iteration) in a child process, which is stopped when the budget runs out;
- a later call loads the checkpoint and continues it with ``warm_start`` for the iterations
  left (on a CPU the continued fit repeats the uninterrupted one), again within the budget;
- each call appends the ACC of the checkpoint it found to ``DIR/progress.jsonl``, and the call
  that completes the last iteration writes ``DIR/result.json``: ACC, purity, ARI and NMI on
  the training rows and, where the data set has them, on the test rows; the fit's iterations
  and seconds.

The number of iterations is the estimator's own (``n_iter``, or what ``"auto"`` resolves to),
read from the first checkpoint and kept in ``DIR/run.json``. A device machine returns what a
command writes under ``$OUT``, so point ``--dir`` there and carry the folder back into the
next command.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHECKPOINT = "checkpoint.joblib"
FITTED = "fitted.joblib"


def _load(dataset, mnist):
    from .suite import DATASETS, load_dataset

    if DATASETS[dataset] not in ("images", "flat"):
        raise ValueError(f"resume runs image and flat-row data sets, not {dataset!r}")
    X, y, X_test, y_test = load_dataset(dataset, mnist)
    if DATASETS[dataset] == "flat":
        X = X.reshape(X.shape[0], -1)
        X_test = None if X_test is None else X_test.reshape(X_test.shape[0], -1)
    return X, y, X_test, y_test


def _scores(est, X, y, X_test, y_test):
    """The benchmark suite's scores (ACC, purity, ARI, NMI; ``test_`` ones on the test rows)."""
    from .suite import _scores as suite_scores

    pred = est.predict(X)
    rec = suite_scores(y, pred)
    if X_test is not None:
        rec.update(suite_scores(y_test, est.predict(X_test), prefix="test_"))
    rec = {k: round(float(v), 4) for k, v in rec.items()}
    rec["cluster_sizes"] = np.bincount(pred, minlength=est.n_clusters).tolist()
    return rec


def worker(spec_json):
    """Start or continue the fit of ``spec`` in this process (the budget is the parent's)."""
    import joblib
    import torch

    import skganem

    from .speed import CLASSES

    spec = json.loads(spec_json)
    torch.set_num_threads(spec["threads"])
    folder = Path(spec["dir"])
    X, y, _, _ = _load(spec["dataset"], spec["mnist"])
    path = folder / CHECKPOINT
    if path.exists():
        est = joblib.load(path)
        est.set_params(warm_start=True, n_iter=spec["total"] - est.n_iter_,
                       checkpoint_path=str(path), checkpoint_every=1)
    else:
        cls = getattr(skganem, CLASSES[spec["method"]])
        est = cls(**{"n_clusters": int(len(np.unique(y))), "random_state": spec["seed"],
                     "device": spec["device"], **spec["params"], "n_init": 1,
                     "checkpoint_path": str(path), "checkpoint_every": 1})
    est.fit(X)
    # the checkpoint holds the last iteration; the fitted estimator also what fit does after
    # it (KM-GAN's final k-means refinement)
    tmp = folder / (FITTED + ".tmp")
    joblib.dump(est.set_params(checkpoint_path=None), tmp)
    tmp.replace(folder / FITTED)


def step(method, dataset, seed, folder, *, params=None, device="auto", budget=540.0,
         threads=2, mnist=None, log=print):
    """One call: start or continue the fit kept in ``folder`` for at most ``budget`` seconds.

    Returns the final record once the fit has completed its iterations, else None."""
    import joblib

    from .suite import environment, mnist_path

    start = time.perf_counter()
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    run_file, result_file = folder / "run.json", folder / "result.json"
    asked = {"method": method, "dataset": dataset, "seed": seed, "params": params or {}}
    run = dict(asked, total=None, seconds=0.0)
    if run_file.exists():
        run = json.loads(run_file.read_text())
        if any(run[k] != v for k, v in asked.items()):
            raise ValueError(f"{folder} holds another fit: {json.dumps(run)}")
    if result_file.exists():
        log(f"[resume] {folder} already holds the completed fit")
        return json.loads(result_file.read_text())
    X, y, X_test, y_test = _load(dataset, mnist)
    path = folder / CHECKPOINT

    def checkpoint_state():
        if not path.exists():
            return None, 0
        est = joblib.load(path)
        if run["total"] is None:  # the first checkpoint still has the fit's own n_iter
            run["total"] = int(est._max_iter(X.shape[0]))
        return est, int(est.n_iter_)

    est, done = checkpoint_state()
    if est is not None:
        with open(folder / "progress.jsonl", "a") as f:
            f.write(json.dumps({"iteration": done, **_scores(est, X, y, X_test, y_test)}) + "\n")
    if run["total"] is None or done < run["total"]:
        spec = dict(run, dir=str(folder), device=device, threads=threads,
                    mnist=str(mnist_path(mnist).resolve()))
        cmd = [sys.executable, "-c",
               "import sys; sys.path.insert(0, sys.argv[1]); "
               "from benchmarks.resumable import worker; worker(sys.argv[2])",
               str(ROOT), json.dumps(spec)]
        # what is left, less a reserve for loading and scoring the checkpoint afterwards
        left = budget - (time.perf_counter() - start) - min(30.0, budget / 10)
        t0 = time.perf_counter()
        try:
            subprocess.run(cmd, check=True, timeout=max(1.0, left))
        except subprocess.TimeoutExpired:
            log(f"[resume] budget of {budget:.0f} s spent; the checkpoint keeps the fit")
        run["seconds"] = round(run["seconds"] + time.perf_counter() - t0, 1)
        est, done = checkpoint_state()
    run_file.write_text(json.dumps(run, indent=1))
    log(f"[resume] {method} on {dataset}, seed {seed}: {done} of {run['total']} iterations, "
        f"{run['seconds']} s of fitting so far")
    if run["total"] is None or done < run["total"]:
        return None
    scored = "fitted" if (folder / FITTED).exists() else "checkpoint"
    if scored == "fitted":
        est = joblib.load(folder / FITTED)
    else:  # stopped while saving: the last iteration, without what fit does after it
        log(f"[resume] {FITTED} is missing: scoring the last checkpoint")
    rec = dict(method=method, dataset=dataset, seed=seed, params=run["params"],
               n_iter=done, fit_s=run["seconds"], scored=scored,
               **_scores(est, X, y, X_test, y_test), **environment())
    result_file.write_text(json.dumps(rec, indent=1))
    return rec
