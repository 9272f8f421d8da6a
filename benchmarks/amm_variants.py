"""AMM settings side by side: each (setting, data set, seed) fitted in a fresh process, with
both scorings, the unseen-row scores where the data set has them, and ``history_`` (the
per-epoch game diagnostics). Records go to ``benchmarks/results/amm_variants.jsonl``.

    python -m benchmarks.amm_variants --datasets digits mnist10k --seeds 0 1 2 \\
        --setting default={} --setting bounded='{"sigma_y_max": 1}' \\
        --setting pure='{"cycle_weight": 0, "reconstruction_weight": 0, "lr": 2e-4}'

``--setting NAME=JSON`` gives constructor parameters; ``"labels": N`` in them fits SAMM with
N labeled rows (N / 10 per class, drawn with the seed). ``--tree NAME=PATH`` runs that
setting with the ``skganem`` package found in PATH (for example an older commit's copy).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "amm_variants.jsonl"

_CHILD = r'''
import json, sys, time, warnings
sys.path.insert(0, sys.argv[1]); sys.path.insert(1, sys.argv[2])
import numpy as np, torch
torch.set_num_threads(int(sys.argv[7]))
warnings.simplefilter("ignore")
from skganem import AMMClustering, cluster_purity, clustering_accuracy
from benchmarks.suite import load_dataset
name, dataset, seed, params, device = sys.argv[3], sys.argv[4], int(sys.argv[5]), json.loads(sys.argv[6]), sys.argv[8]
X, y, Xt, yt = load_dataset(dataset, sys.argv[9] or None)
n_labels = params.pop("labels", None)
est = AMMClustering(n_clusters=len(np.unique(y)), random_state=seed, device=device, **params)
t = time.perf_counter()
if n_labels:
    rng = np.random.RandomState(seed)
    given = np.full(y.shape, -1, dtype=np.int64)
    for c in np.unique(y):
        given[rng.choice(np.flatnonzero(y == c), n_labels // len(np.unique(y)), replace=False)] = c
    est.set_params(semi_supervised=True).fit(X, given)
else:
    est.fit(X)
rec = dict(name=name, dataset=dataset, seed=seed, params=params, labels=n_labels,
           fit_s=round(time.perf_counter() - t, 1), n_iter=est.n_iter_,
           acc=clustering_accuracy(y, est.labels_), purity=cluster_purity(y, est.labels_),
           device=str(est.device_), threads=torch.get_num_threads(),
           gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
           sizes=np.bincount(est.labels_, minlength=est.n_clusters).tolist())
if Xt is not None:
    rec["test_acc"] = clustering_accuracy(yt, est.predict(Xt))
est.set_params(predict_method="bayes")
rec["acc_bayes"] = clustering_accuracy(y, est.predict(X))
if Xt is not None:
    rec["test_acc_bayes"] = clustering_accuracy(yt, est.predict(Xt))
rec["history"] = [{k: v for k, v in h.items() if k != "cluster_sizes"} for h in est.history_]
print(json.dumps(rec))
'''


def fit(tree, name, dataset, seed, params, threads=1, device="auto", mnist=None):
    """One fit in a fresh process with ``tree``'s skganem; returns its record."""
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tree), str(ROOT), name, dataset, str(seed),
         json.dumps(params), str(threads), device, str(mnist or "")],
        capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"name": name, "dataset": dataset, "seed": seed, "error": proc.stderr[-1500:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pairs(items, parse=str):
    out = {}
    for item in items or ():
        key, _, value = item.partition("=")
        out[key] = parse(value)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setting", action="append", required=True, help="NAME=JSON parameters")
    ap.add_argument("--tree", action="append", help="NAME=PATH: skganem package for NAME")
    ap.add_argument("--datasets", nargs="+", default=["digits"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=1, help="fits at once")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of each fit")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--mnist", default=None)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    settings = _pairs(args.setting, json.loads)
    trees = _pairs(args.tree)
    todo = [(trees.get(name, ROOT), name, d, s, dict(p)) for name, p in settings.items()
            for d in args.datasets for s in args.seeds]
    os.makedirs(Path(args.out).parent, exist_ok=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(fit, *job, threads=args.threads, device=args.device,
                               mnist=args.mnist) for job in todo]
        for future in as_completed(futures):
            rec = future.result()
            with open(args.out, "a") as f:
                f.write(json.dumps(rec) + "\n")
            print(rec["name"], rec["dataset"], rec["seed"], rec.get("acc"),
                  rec.get("acc_bayes"), rec.get("fit_s"), rec.get("error", "")[-300:],
                  flush=True)


if __name__ == "__main__":
    main()
