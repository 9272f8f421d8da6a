"""ACC and embedding silhouette after every training iteration, for several seeds at once.

    python -m benchmarks trajectory --method ganem --dataset mnist10k --seeds 0 1 2 \\
        --params '{"n_iter": 60}' --jobs 3 --out traj.jsonl

Each fit runs in its own process (one torch thread unless ``--threads``) and appends one JSON
line per iteration to ``--out`` as it goes: ``it`` (0 = the initial assignments), ``acc``
(Hungarian ACC of the engine's assignments of the training rows), ``sil`` (silhouette of those
assignments on :meth:`transform` of 2,000 evenly spaced rows, the restart criterion of
``n_init``), ``conf`` (the mean largest :meth:`predict_proba` of the training rows, the
restart criterion on images), ``sizes_min`` (the smallest cluster) and ``t`` (seconds since
the fit began);
then a ``final`` record with the fitted estimator's scores and its ``confusion`` (rows: true
classes, columns: clusters). A fit stopped by a time limit
leaves the iterations it completed, which is what a device session of a few minutes needs.

The assignments are read where ``fit_loop`` already computes them for ``label_change``, in eval
mode and without drawing random numbers, so the fit is the one the estimator makes without
the recording.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def worker(name, method, dataset, seed, params, out, mnist):
    """One fit in this process, recording every iteration to ``out``."""
    import numpy as np
    import torch
    from sklearn.metrics import silhouette_score

    import skganem
    from skganem._base import RESTART_SCORE_ROWS
    from skganem._device import batch_slices
    from skganem._engines import amm, ganem, kmgan
    from skganem._engines._base import Engine
    from skganem.metrics import cluster_purity, clustering_accuracy

    from .suite import load_dataset

    X, y, X_test, y_test = load_dataset(dataset, mnist)
    cls = {"ganem": skganem.GANEMClustering, "kmgan": skganem.KMGAN,
           "amm": skganem.AMMClustering}[method]
    k = int(len(np.unique(y)))
    est = cls(**{"n_clusters": k, "random_state": seed, "device": "auto", "n_init": 1, **params})
    rows = np.unique(np.linspace(0, len(y) - 1, RESTART_SCORE_ROWS).astype(np.int64))
    t0 = time.perf_counter()
    step = [0]

    def emit(rec):
        rec.update(name=name, method=method, dataset=dataset, seed=seed)
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def recording(engine_cls):
        original = engine_cls.assignments

        def assignments(self, data):
            labels = original(self, data)
            if labels is None:  # e.g. during KM-GAN's pretraining
                return labels
            lab = labels.cpu().numpy()
            rec = dict(it=step[0], acc=round(float(clustering_accuracy(y, lab)), 4),
                       t=round(time.perf_counter() - t0, 1),
                       sizes_min=int(np.bincount(lab, minlength=k).min()))
            modes = {n: net.training for n, net in self.nets.items()}
            with torch.no_grad():
                self.eval()
                emb = self.transform(data.rows(rows)).float().cpu().numpy()
                # the restart criterion "confidence": mean largest predict_proba of all rows
                conf = torch.cat([self.predict_proba(data.rows(sl)).float().amax(1)
                                  for sl in batch_slices(data.n, 1024)]).mean()
            for n, net in self.nets.items():
                net.train(modes[n])
            rec["conf"] = round(float(conf), 4)
            if len(np.unique(lab[rows])) > 1:
                rec["sil"] = round(float(silhouette_score(emb, lab[rows])), 4)
            emit(rec)
            step[0] += 1
            return labels

        engine_cls.assignments = assignments

    for module in (ganem, kmgan, amm):
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Engine) and "assignments" in vars(obj):
                recording(obj)
    est.fit(X)
    rec = dict(final=True, fit_s=round(time.perf_counter() - t0, 1), n_iter=est.n_iter_,
               acc=round(float(clustering_accuracy(y, est.labels_)), 4),
               purity=round(float(cluster_purity(y, est.labels_)), 4),
               device=str(est.device_), torch=torch.__version__,
               gpu=torch.cuda.get_device_name(0) if str(est.device_).startswith("cuda") else None,
               sizes=np.bincount(est.labels_, minlength=k).tolist(), params=params,
               # rows: true classes, columns: clusters
               confusion=[np.bincount(est.labels_[y == c], minlength=k).tolist()
                          for c in np.unique(y)])
    if X_test is not None:
        rec["test_acc"] = round(float(clustering_accuracy(y_test, est.predict(X_test))), 4)
    emit(rec)


def _one(job, out, threads, mnist, worker_module):
    name, method, dataset, seed, params = job
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    code = ("import sys, json, torch; sys.path.insert(0, sys.argv[1]);"
            "torch.set_num_threads(int(sys.argv[2]));"
            f"from {worker_module} import worker;"
            "worker(sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]),"
            " json.loads(sys.argv[7]), sys.argv[8], sys.argv[9])")
    t = time.time()
    p = subprocess.run([sys.executable, "-c", code, str(ROOT), str(threads), name, method,
                        dataset, str(seed), json.dumps(params), str(out), str(mnist)],
                       capture_output=True, text=True, env=env, cwd=str(ROOT))
    return dict(name=name, seed=seed, rc=p.returncode, seconds=round(time.time() - t),
                error=p.stderr[-800:] if p.returncode else "")


def run(jobs, out, jobs_at_once=1, threads=1, mnist=None, worker_module="benchmarks.trajectory"):
    """Run ``jobs`` (tuples ``(name, method, dataset, seed, params)``), ``jobs_at_once`` at a
    time; every fit appends its iterations to ``out``. Each process calls the ``worker`` of
    ``worker_module`` (this module's, or one with its signature that changes the fit).
    Returns each process's exit status (and the end of its error output)."""
    from .suite import mnist_path

    mnist = mnist_path(mnist).resolve()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    results = []
    with ThreadPoolExecutor(jobs_at_once) as pool:
        futures = [pool.submit(_one, job, Path(out).resolve(), threads, mnist, worker_module)
                   for job in jobs]
        for fut in as_completed(futures):
            results.append(fut.result())
            print(json.dumps(results[-1]), flush=True)
    return results


def summary(path):
    """``{(name, seed): [iteration records]}`` and ``{(name, seed): final record}``."""
    iters, finals = {}, {}
    for line in Path(path).read_text().splitlines():
        rec = json.loads(line)
        key = (rec["name"], rec["seed"])
        if rec.get("final"):
            finals[key] = rec
        else:
            iters.setdefault(key, []).append(rec)
    return iters, finals
