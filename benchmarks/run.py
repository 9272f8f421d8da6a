"""Benchmark skganem estimators against KMeans and GaussianMixture.

Usage::

    python benchmarks/run.py --dataset digits --methods ganem kmgan kmeans gmm --seeds 0 1 2
    python benchmarks/run.py --dataset mnist10k --methods ganem kmeans --seeds 0

Prints one line per fit and a markdown table of mean +- std over seeds, and writes the raw
records to ``benchmarks/results/<dataset>.json`` (appending to earlier records).
MNIST is read from ``--mnist`` (default: ``$SKGANEM_MNIST`` or ``../shared/data/mnist_train.npz``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline

from skganem import AMMClustering, GANEMClustering, KMGAN, clustering_accuracy
from skganem.datasets import load_mnist

HERE = Path(__file__).resolve().parent
DEFAULT_MNIST = HERE.parent.parent / "shared" / "data" / "mnist_train.npz"


def load(name, mnist_path):
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        return X.reshape(-1, 8, 8).astype(np.float32), y
    n = {"mnist10k": 10000, "mnist60k": None}[name]
    X, y = load_mnist(mnist_path, n_samples=n, random_state=0)
    return X.astype(np.float32), y


def make(method, k, seed, device, n_iter=None):
    common = dict(n_clusters=k, random_state=seed, device=device)
    if n_iter is not None and method in ("ganem", "ganem-paper", "kmgan", "amm"):
        common["n_iter"] = n_iter
    if method == "ganem":  # digits: 12 EM iterations (as benchmarked); else the default (18)
        return GANEMClustering(**common)
    if method == "ganem-paper":
        return GANEMClustering(architecture="paper", n_iter=30, **common)
    if method == "kmgan":
        return KMGAN(**common)
    if method == "amm":
        return AMMClustering(**common)
    if method == "kmeans":
        return KMeans(k, n_init=10, random_state=seed)
    if method == "kmeans-pca50":
        return make_pipeline(PCA(50, random_state=seed), KMeans(k, n_init=10, random_state=seed))
    if method == "gmm-pca50":
        return make_pipeline(PCA(50, random_state=seed),
                             GaussianMixture(k, covariance_type="diag", random_state=seed))
    raise ValueError(method)


def commit():
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                                       text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default="digits", choices=["digits", "mnist10k", "mnist60k"])
    ap.add_argument("--methods", nargs="+", default=["kmeans", "gmm-pca50", "ganem", "kmgan"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--mnist", default=os.environ.get("SKGANEM_MNIST", str(DEFAULT_MNIST)))
    ap.add_argument("--n-iter", type=int, default=None,
                    help="iterations/epochs of the skganem estimators (default: their own)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    X, y = load(args.dataset, args.mnist)
    k = len(np.unique(y))
    records = []
    for method in args.methods:
        for seed in args.seeds:
            est = make(method, k, seed, args.device,
                       args.n_iter if args.n_iter is not None else
                       (12 if args.dataset == "digits" and method == "ganem" else None))
            Xin = X if hasattr(est, "engine_") or method.startswith(("ganem", "kmgan", "amm")) \
                else X.reshape(X.shape[0], -1)
            t0 = time.perf_counter()
            est.fit(Xin)
            fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            pred = est.predict(Xin)
            pred_s = time.perf_counter() - t0
            rec = dict(dataset=args.dataset, n=int(X.shape[0]), method=method, seed=seed,
                       n_iter=getattr(est, "n_iter_", None),
                       acc=clustering_accuracy(y, pred), ari=adjusted_rand_score(y, pred),
                       nmi=normalized_mutual_info_score(y, pred), fit_seconds=fit_s,
                       predict_rows_per_s=X.shape[0] / pred_s,
                       device=getattr(est, "device_", "cpu"), torch=torch.__version__,
                       threads=torch.get_num_threads(), cpu=platform.processor() or
                       platform.machine(), commit=commit())
            records.append(rec)
            print(json.dumps(rec), flush=True)

    out = Path(args.out or HERE / "results" / f"{args.dataset}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(out.read_text()) if out.exists() else []
    out.write_text(json.dumps(old + records, indent=1))
    print(f"\n{args.dataset} (n={X.shape[0]}, {len(args.seeds)} seeds)\n")
    print("| method | ACC | ARI | NMI | fit s | device |\n|---|---|---|---|---|---|")
    for method in args.methods:
        rs = [r for r in records if r["method"] == method]
        f = lambda key: f"{np.mean([r[key] for r in rs]):.3f} ± {np.std([r[key] for r in rs]):.3f}"
        print(f"| {method} | {f('acc')} | {f('ari')} | {f('nmi')} | "
              f"{np.mean([r['fit_seconds'] for r in rs]):.0f} | {rs[0]['device']} |")


if __name__ == "__main__":
    main()
