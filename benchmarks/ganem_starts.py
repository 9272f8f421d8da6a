"""GAN-EM from other initial assignments: ACC after every iteration, as ``trajectory`` records.

    python -m benchmarks.ganem_starts --start labels --seeds 2
    python -m benchmarks.ganem_starts --start spectral --seeds 0 1 2

``GANEMClustering(init="kmeans")`` starts from k-means on a 50-component PCA (ACC 0.50-0.57
on MNIST-10k). This replaces that start, for one fit per seed at the defaults otherwise:

- ``labels``: the true classes (a diagnostic that needs labels): does a run that starts at
  the right partition stay there?
- ``spectral``: normalised spectral clustering (Ng, Jordan and Weiss, 2002) of the same
  PCA: the 10 leading eigenvectors of the 10-nearest-neighbour graph's normalised Laplacian
  (``sklearn.manifold.SpectralEmbedding``), rows scaled to unit length, then k-means
  (ACC 0.70 on MNIST-10k).

The k-means start is still computed first, so the estimator's random stream is the one of a
default fit. Each fit runs in its own process with ``--threads`` torch threads (2: the
benchmark suite's setting) and appends its records to ``--out`` (named
``ganem-start-<start>-<threads>t``); read them with :func:`benchmarks.trajectory.summary`.
"""

from __future__ import annotations

import argparse

import numpy as np

from .suite import HERE
from .trajectory import run


def spectral_labels(X_scaled, n_clusters, seed, n_components=50, n_neighbors=10):
    """Normalised spectral clustering of a PCA of the rows (Ng, Jordan and Weiss, 2002)."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.manifold import SpectralEmbedding

    X = np.asarray(X_scaled[:], dtype=np.float32).reshape(X_scaled.shape[0], -1)
    P = PCA(n_components, random_state=seed).fit_transform(X)
    E = SpectralEmbedding(n_clusters, affinity="nearest_neighbors", n_neighbors=n_neighbors,
                          random_state=seed).fit_transform(P)
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    return KMeans(n_clusters, n_init=4, random_state=seed).fit_predict(E).astype(np.int64)


def worker(name, method, dataset, seed, params, out, mnist):
    """One GAN-EM fit in this process, started from ``params["start"]`` (the other ``params``
    go to the estimator), recorded to ``out`` by :func:`benchmarks.trajectory.worker`."""
    import skganem.ganem as ganem_module

    from .suite import load_dataset
    from .trajectory import worker as trajectory_worker

    params = dict(params)
    start = params.pop("start")
    _, y, _, _ = load_dataset(dataset, mnist)
    kmeans_start = ganem_module.kmeans_pca_labels

    def replaced(X_scaled, n_clusters, rng, **kwargs):
        labels = kmeans_start(X_scaled, n_clusters, rng, **kwargs)  # keeps the random stream
        if start == "labels":
            return np.asarray(y, dtype=np.int64)
        if start == "spectral":
            return spectral_labels(X_scaled, n_clusters, seed)
        return labels

    ganem_module.kmeans_pca_labels = replaced
    trajectory_worker(name, method, dataset, seed, params, out, mnist)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--start", choices=("labels", "spectral", "kmeans"), required=True)
    p.add_argument("--dataset", default="mnist10k")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--mnist", default=None)
    p.add_argument("--out", default=str(HERE / "results" / "trajectory_cpu.jsonl"))
    args = p.parse_args(argv)
    name = f"ganem-start-{args.start}-{args.threads}t"
    jobs = [(name, "ganem", args.dataset, seed, {"start": args.start}) for seed in args.seeds]
    # one fit at a time: the suite's setting
    run(jobs, args.out, threads=args.threads, mnist=args.mnist,
        worker_module="benchmarks.ganem_starts")


if __name__ == "__main__":
    main()
