"""Starts of AMM's mixture scoring (``mixture_n_init``): which EM start the likelihood keeps.

    python -m benchmarks.mixture_starts --dataset mnist10k --seeds 0 1 2
    python -m benchmarks.mixture_starts --dataset mnist10k --seeds 0 1 2 --models DIR
    python -m benchmarks.mixture_starts --method ganem --reg 0.3 --seeds 0 1 2

Each seed is one fit of ``--method`` with the defaults (in this process, with torch's
default thread count, as the benchmark suite fits; or loaded from ``DIR/<method>_<dataset>_
<seed>.joblib`` where that file exists, and saved there after a fit). On the fit's training
embedding ``transform(X)`` (AMM's codes, GAN-EM's layer r) it fits a full-covariance mixture
(``skganem._engines._gmm.fit_gmm``, diagonal term ``--reg``, by default AMM's) from the
clusters of ``predict_proba`` and from ``--starts`` k-means++ starts, one at a time, and
records each fit's mean log-likelihood and ACC (one JSON line per seed in ``--out``). The summary gives, for ``n``
k-means++ starts besides the encoder's, the expected ACC of the start with the largest
likelihood when the ``n`` are drawn at random from the recorded ones.
"""

from __future__ import annotations

import argparse
import json
import time
from math import comb
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "mixture_starts.jsonl"


def measure(est, X, y, starts, seed, reg=None):
    """``[(mean log-likelihood, ACC)]`` of the mixture from the clusters of
    ``predict_proba``, then from each of ``starts`` k-means++ starts (torch seeded with
    ``1000 + seed``); ``reg`` None: AMM's ``mixture_reg``."""
    import torch

    from skganem._device import batched_inference
    from skganem._engines._gmm import fit_gmm, gmm_log_joint
    from skganem._engines._kmeans import kmeans_plus_plus, nearest
    from skganem.metrics import clustering_accuracy

    engine, data, k = est.engine_, est._data(X), est.n_clusters
    engine.eval()
    codes = torch.as_tensor(batched_inference(engine.transform, data, 1000))
    encoder = torch.as_tensor(batched_inference(engine.predict_proba, data, 1000).argmax(1))
    reg = engine.config.mixture_reg if reg is None else reg
    out = []
    with torch.random.fork_rng():
        torch.manual_seed(1000 + seed)
        for start in range(starts + 1):
            labels = encoder if start == 0 else nearest(codes, kmeans_plus_plus(codes, k, 50))
            params = fit_gmm(codes, labels, k, reg=reg)
            joint = gmm_log_joint(codes, *params)
            out.append((round(float(torch.logsumexp(joint, 1).mean()), 4),
                        round(float(clustering_accuracy(y, joint.argmax(1).numpy())), 4)))
    return out


def expected_pick(fits, n):
    """Expected ACC of the largest-likelihood fit among the encoder's (``fits[0]``) and ``n``
    of the k-means++ fits drawn without replacement."""
    encoder, others = fits[0], sorted(fits[1:], reverse=True)
    m, total = len(others), 0.0
    if n == 0:
        return encoder[1]
    for i, fit in enumerate(others):  # the subset's best is the (i+1)-th best of all
        p = comb(m - i - 1, n - 1) / comb(m, n)
        total += p * (fit[1] if fit[0] > encoder[0] else encoder[1])
    return total


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--method", choices=("amm", "ganem"), default="amm")
    ap.add_argument("--dataset", default="mnist10k")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--starts", type=int, default=20)
    ap.add_argument("--reg", type=float, default=None, help="diagonal term (AMM's default)")
    ap.add_argument("--models", default=None, help="folder of fitted estimators (joblib)")
    ap.add_argument("--mnist", default=None)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)

    import joblib
    import numpy as np

    from .suite import environment, load_dataset, make_estimator

    X, y, _, _ = load_dataset(args.dataset, args.mnist)
    records = []
    for seed in args.seeds:
        name = f"{args.method}_{args.dataset}_{seed}.joblib"
        path = Path(args.models) / name if args.models else None
        fit_s = None
        if path is not None and path.exists():
            est = joblib.load(path)
        else:
            est = make_estimator(args.method, len(np.unique(y)), seed)
            t = time.perf_counter()
            est.fit(X)
            fit_s = round(time.perf_counter() - t, 1)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                joblib.dump(est, path)
        from skganem.metrics import clustering_accuracy

        rec = dict(method=args.method, dataset=args.dataset, seed=seed, fit_s=fit_s,
                   labels_acc=round(float(clustering_accuracy(y, est.labels_)), 4),
                   reg=args.reg, fits=measure(est, X, y, args.starts, seed, args.reg),
                   **environment())
        with open(args.out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        records.append(rec)
        print(json.dumps({k: rec[k] for k in ("method", "dataset", "seed", "fits")}), flush=True)
    print("k-means++ starts | " + " | ".join(f"seed {r['seed']}" for r in records) + " | mean")
    for n in (0, 1, 2, 5, 10, args.starts):
        picks = [expected_pick(r["fits"], n) for r in records]
        print(f"{n} | " + " | ".join(f"{p:.3f}" for p in picks)
              + f" | {sum(picks) / len(picks):.3f}")


if __name__ == "__main__":
    main()
