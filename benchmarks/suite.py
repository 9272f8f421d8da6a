"""Clustering benchmark: skganem estimators against the baselines a user would pick instead.

Every (method, data set, seed) is fitted in a fresh process, so that the process's peak
resident memory (``ru_maxrss``) belongs to that fit alone. One JSON record per fit is appended
to the results file as soon as the fit ends (an interrupted suite keeps what it finished and
``--skip-done`` resumes it). :mod:`benchmarks.report` turns the records into markdown.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_MNIST = ROOT.parent / "shared" / "data" / "mnist_train.npz"
RESULTS = HERE / "results" / "suite.json"

SKGANEM_METHODS = ("ganem", "kmgan", "amm")
BASELINES = ("kmeans", "kmeans-pca50", "gmm", "gmm-pca50", "umap-gmm")
#: UMAP's neighbourhood sizes compared for the UMAP + GaussianMixture baseline (N2D's authors
#: report that small ones cluster MNIST better); "umap-gmm" uses UMAP_NEIGHBORS.
UMAP_VARIANTS = ("umap-gmm-nn10", "umap-gmm-nn15", "umap-gmm-nn20")
UMAP_NEIGHBORS = 20
METHODS = SKGANEM_METHODS + BASELINES + UMAP_VARIANTS
LABELS = {
    "ganem": "`GANEMClustering`",
    "kmgan": "`KMGAN`",
    "amm": "`AMMClustering`",
    "kmeans": "`KMeans` on pixels",
    "kmeans-pca50": "PCA(50) + `KMeans`",
    "gmm": "`GaussianMixture(diag)` on pixels",
    "gmm-pca50": "PCA(50) + `GaussianMixture(full, reg_covar=1e-3)`",
    "umap-gmm": "UMAP(10) + `GaussianMixture` (n2d)",
    "umap-gmm-nn10": "UMAP(10, n_neighbors=10) + `GaussianMixture`",
    "umap-gmm-nn15": "UMAP(10, n_neighbors=15) + `GaussianMixture`",
    "umap-gmm-nn20": "UMAP(10, n_neighbors=20) + `GaussianMixture`",
}
#: How each data set reaches the estimators: "images" (skganem gets (n, H, W) arrays, the
#: baselines flat rows), "flat" (everyone gets the same flat rows, as a scikit-learn user
#: passes them), "table" (flat rows through ``make_pipeline(StandardScaler(), estimator)``).
DATASETS = {
    "digits": "images", "mnist10k": "images", "mnist60k": "images",
    "digits-flat": "flat", "mnist10k-flat": "flat",
    "digits-table": "table", "cancer": "table", "wine": "table",
    "digits-unequal": "images", "mnist-unequal": "images",
}
#: Images per class of the unequal sets (the classes 0-4 of digits and of MNIST).
UNEQUAL_COUNTS = {"digits-unequal": (170, 120, 80, 50, 30),
                  "mnist-unequal": (1000, 700, 400, 250, 150)}
SUITES = {
    # data sets, methods, seeds
    "cpu": (("digits", "mnist10k"), METHODS, (0, 1, 2)),
    "forms": (("digits-flat", "cancer", "wine", "digits-table"),
              SKGANEM_METHODS + ("kmeans", "gmm"), (0, 1, 2)),
    "gpu": (("digits", "mnist10k", "mnist60k"), METHODS, (0, 1, 2)),
    "unequal": (("digits-unequal", "mnist-unequal"), METHODS, (0, 1, 2)),
    "baselines": (("digits", "mnist10k"), BASELINES, (0, 1, 2)),
    "umap": (("digits", "mnist10k"), UMAP_VARIANTS, (0, 1, 2)),
    "smoke": (("digits",), ("kmeans", "kmeans-pca50"), (0,)),
}


def mnist_path(path=None):
    return Path(path or os.environ.get("SKGANEM_MNIST", DEFAULT_MNIST))


def load_dataset(name, mnist=None):
    """``(X_train, y_train, X_test, y_test)``; the test part is ``None`` where there is none.

    digits: the 1,797 8x8 images, no test part. mnist10k: the 10,000 training rows of
    ``load_mnist(n_samples=10000, random_state=0)`` and 10,000 other rows of the same file for
    the inductive test. mnist60k: all 60,000 rows, no test part. ``-flat`` names give the same
    rows flattened; digits-table is digits as a flat table; cancer and wine are scikit-learn's
    breast-cancer (569 rows, 30 features, classes of 212 and 357) and wine (178 rows, 13
    features, 3 classes) tables. Tables are standardized by the pipeline, not here.
    digits-unequal and mnist-unequal: images of the classes 0-4 in the numbers of
    :data:`UNEQUAL_COUNTS`, each class's drawn with ``RandomState(0)``; for MNIST the test
    part is as many other images of each class, drawn the same way.
    """
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine

    from skganem.datasets import load_mnist

    if name in ("cancer", "wine"):
        X, y = (load_breast_cancer if name == "cancer" else load_wine)(return_X_y=True)
        return X, y, None, None
    if name in UNEQUAL_COUNTS:
        if name == "digits-unequal":
            X, y = load_digits(return_X_y=True)
            X = X.reshape(-1, 8, 8)
        else:
            X, y = load_mnist(mnist_path(mnist))
        rng = np.random.RandomState(0)
        train, test = [], []
        for c, n in enumerate(UNEQUAL_COUNTS[name]):
            rows = rng.permutation(np.flatnonzero(y == c))
            train.append(rows[:n])
            test.append(rows[n:2 * n])
        train, test = np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
        if name == "digits-unequal":
            return X[train].astype(np.float32), y[train], None, None
        return (X[train].astype(np.float32), y[train], X[test].astype(np.float32), y[test])
    if name.startswith("digits"):
        X, y = load_digits(return_X_y=True)
        if name == "digits":
            X = X.reshape(-1, 8, 8)
        return X.astype(np.float32), y, None, None
    X, y = load_mnist(mnist_path(mnist))
    X = X.astype(np.float32)
    if name == "mnist60k":
        return X, y, None, None
    if name not in ("mnist10k", "mnist10k-flat"):
        raise ValueError(f"unknown data set {name!r}")
    if name == "mnist10k-flat":
        X = X.reshape(X.shape[0], -1)
    train = np.sort(np.random.RandomState(0).choice(X.shape[0], 10000, replace=False))
    rest = np.setdiff1d(np.arange(X.shape[0]), train)
    test = np.sort(np.random.RandomState(1).choice(rest, 10000, replace=False))
    return X[train], y[train], X[test], y[test]


def make_estimator(method, k, seed, device="auto", n_iter=None):
    """The estimator of ``method``; skganem estimators take images, baselines flat rows."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture
    from sklearn.pipeline import make_pipeline

    from skganem import KMGAN, AMMClustering, GANEMClustering

    if method in SKGANEM_METHODS:
        cls = {"ganem": GANEMClustering, "kmgan": KMGAN, "amm": AMMClustering}[method]
        kw = dict(n_clusters=k, random_state=seed, device=device)
        if n_iter is not None:
            kw["n_iter"] = n_iter
        return cls(**kw)
    if method == "kmeans":
        return KMeans(k, n_init=10, random_state=seed)
    if method == "kmeans-pca50":
        return make_pipeline(PCA(50, random_state=seed), KMeans(k, n_init=10, random_state=seed))
    if method == "gmm":
        return GaussianMixture(k, covariance_type="diag", reg_covar=1e-3, random_state=seed)
    if method == "gmm-pca50":
        return make_pipeline(PCA(50, random_state=seed),
                             GaussianMixture(k, covariance_type="full", reg_covar=1e-3,
                                             random_state=seed))
    if method.startswith("umap-gmm"):
        neighbors = int(method[len("umap-gmm-nn"):]) if "-nn" in method else UMAP_NEIGHBORS
        try:
            from umap import UMAP
        except ImportError as exc:  # benchmark-only extra
            raise ImportError("umap-gmm needs umap-learn: pip install 'skganem[benchmark]'") from exc
        return make_pipeline(UMAP(n_components=10, n_neighbors=neighbors, min_dist=0.0,
                                  random_state=seed),
                             GaussianMixture(k, covariance_type="full", random_state=seed))
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


def environment():
    import sklearn
    import torch

    try:
        commit = subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                         text=True, stderr=subprocess.DEVNULL).strip()
        dirty = subprocess.check_output(["git", "status", "--porcelain", "--untracked-files=no",
                                         "skganem"], cwd=ROOT, text=True,
                                        stderr=subprocess.DEVNULL).strip()
        commit += "+dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return dict(torch=torch.__version__, sklearn=sklearn.__version__, commit=commit,
                threads=torch.get_num_threads(), cpus=os.cpu_count(), gpu=gpu,
                machine=platform.machine(), python=platform.python_version())


def _scores(y, pred, prefix=""):
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from skganem import cluster_purity, clustering_accuracy

    return {prefix + "acc": clustering_accuracy(y, pred),
            prefix + "purity": cluster_purity(y, pred),
            prefix + "ari": adjusted_rand_score(y, pred),
            prefix + "nmi": normalized_mutual_info_score(y, pred)}


def fit_one(dataset, method, seed, device="auto", n_iter=None, mnist=None):
    """Fit one estimator and measure it; meant to run in a fresh process (see :func:`run`)."""
    import torch

    X, y, X_test, y_test = load_dataset(dataset, mnist)
    k = len(np.unique(y))
    est = make_estimator(method, k, seed, device, n_iter)  # the estimators' defaults
    form = DATASETS[dataset]
    images = method in SKGANEM_METHODS and form == "images"
    prep = (lambda a: a) if images else (lambda a: a.reshape(a.shape[0], -1))
    if form == "table":
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        est = make_pipeline(StandardScaler(), est)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        est.fit(prep(X))
    fit_s = time.perf_counter() - t0
    final = est.steps[-1][1] if hasattr(est, "steps") else est
    X_pred = X_test if X_test is not None else X
    t0 = time.perf_counter()
    pred_test = est.predict(prep(X_pred))
    predict_s = time.perf_counter() - t0
    pred = getattr(est, "labels_", None)
    if pred is None and hasattr(est, "predict"):  # pipelines, GaussianMixture
        pred = est.predict(prep(X))
    rec = dict(dataset=dataset, form=form, method=method, seed=seed, n_train=int(X.shape[0]),
               n_test=None if X_test is None else int(X_test.shape[0]), k=k,
               n_iter=getattr(final, "n_iter_", None), params={}, **_scores(y, pred))
    scores = getattr(final, "restart_scores_", None)
    rec.update(cluster_sizes=np.bincount(pred, minlength=k).tolist(),
               n_runs=None if scores is None else int(len(scores)),
               image_shape=list(getattr(final, "image_shape_", None) or []) or None,
               convergence_warnings=[str(w.message)[:300] for w in caught
                                     if issubclass(w.category, ConvergenceWarning)])
    if X_test is not None:
        rec.update(_scores(y_test, pred_test, "test_"))
    if method == "amm":  # the other scorings of the same fit (encoder, Eq. 19, mixture)
        from skganem import clustering_accuracy

        used = final.predict_method
        for other in ("encoder", "bayes", "mixture"):
            if other == used:
                continue
            final.set_params(predict_method=other)
            rec[other + "_acc"] = clustering_accuracy(y, est.predict(prep(X)))
            if X_test is not None:
                rec["test_" + other + "_acc"] = clustering_accuracy(y_test,
                                                                    est.predict(prep(X_test)))
        final.set_params(predict_method=used)
    rec.update(fit_seconds=fit_s, predict_rows_per_s=X_pred.shape[0] / predict_s,
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               rss_before_fit_mb=rss_before,
               device=str(getattr(est, "device_", "cpu")),
               peak_gpu_mb=(torch.cuda.max_memory_allocated() / 2**20
                            if torch.cuda.is_available() else None),
               **environment())
    return rec


def load_records(path=RESULTS):
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else []


def _fit_in_fresh_process(args, threads):
    """``fit_one`` in a new (spawned) process, with ``threads`` torch threads if given."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn"),
                             initializer=_set_threads, initargs=(threads,)) as pool:
        return pool.submit(fit_one, *args).result()


def _set_threads(threads):
    if threads:
        import torch

        torch.set_num_threads(threads)


def run(datasets, methods, seeds, *, device="auto", n_iter=None, mnist=None, out=RESULTS,
        skip_done=False, fresh_process=True, jobs=1, log=print):
    """Fit every (data set, method, seed); append each record to ``out``; return the records.

    ``jobs > 1`` runs that many fits at once, each in its own process with
    ``cpu_count // jobs`` torch threads (the records name the thread count): faster for
    accuracy tables, but the fit times are then those of fewer threads on a busier machine.
    """
    out = Path(out)
    done = {(r["dataset"], r["method"], r["seed"]) for r in load_records(out)}
    todo = []
    for dataset in datasets:
        for method in methods:
            for seed in seeds:
                if skip_done and (dataset, method, seed) in done:
                    log(f"skip {dataset} {method} seed {seed}: already in {out}")
                    continue
                todo.append((dataset, method, seed))
    return run_fits(todo, device=device, n_iter=n_iter, mnist=mnist, out=out,
                    fresh_process=fresh_process, jobs=jobs, log=log)


def run_fits(todo, *, device="auto", n_iter=None, mnist=None, out=RESULTS, fresh_process=True,
             jobs=1, log=print):
    """Fit each ``(data set, method, seed)`` of ``todo``; append the records to ``out``."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    todo = [(d, m, s, device, n_iter, mnist) for d, m, s in todo]
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None

    def one(args):
        try:
            if fresh_process:
                return _fit_in_fresh_process(args, threads)
            return fit_one(*args)
        except Exception as exc:  # a failed fit is a result too; the suite goes on
            return dict(dataset=args[0], method=args[1], seed=args[2],
                        error=f"{type(exc).__name__}: {exc}"[:500], **environment())

    new = []
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for future in as_completed([pool.submit(one, args) for args in todo]):
            rec = future.result()
            new.append(rec)
            out.write_text(json.dumps(load_records(out) + [rec], indent=1))
            log(json.dumps(rec))
            sys.stdout.flush()
    return new
