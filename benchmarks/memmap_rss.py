"""Peak resident memory of fitting and predicting on a large numpy.memmap.

Usage: python benchmarks/memmap_rss.py [--gb 2] [--dir /tmp]

Writes a float32 memmap of about ``--gb`` GB of 784-feature rows (clustered random data),
then in a fresh process measures, during a short GANEMClustering fit (1 EM iteration, small
networks) and a full predict pass: the peak RSS (which counts the mapped file's pages the OS
keeps resident: reclaimable page cache, not copies) and the peak private memory (RssAnon),
each against the interpreter's baseline after importing torch and skganem.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


class AnonSampler:
    """Samples RssAnon (private memory, excluding mapped file pages) every 20 ms."""

    def __init__(self):
        import threading

        self.peak, self._stop = 0, False
        self.thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def read():
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def _run(self):
        while not self._stop:
            self.peak = max(self.peak, self.read())
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop = True
        self.thread.join()


def child(path, n, d):
    import torch  # noqa: F401  (counted in the baseline)
    import skganem  # noqa: F401

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    base_anon = AnonSampler.read()
    sampler = AnonSampler().__enter__()
    X = np.memmap(path, dtype=np.float32, mode="r", shape=(n, d))
    from skganem import GANEMClustering

    t0 = time.perf_counter()
    est = GANEMClustering(n_clusters=10, hidden_dims=(128,), n_iter=1, m_epochs=0.02,
                          min_m_steps=50, e_steps=50, random_state=0).fit(X)
    fit_s = time.perf_counter() - t0
    peak_fit = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    labels = est.predict(X)
    pred_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sampler.__exit__()
    print(json.dumps(dict(rows=n, features=d, gb=n * d * 4 / 1e9, baseline_rss_mb=round(base),
                          peak_rss_fit_mb=round(peak_fit), peak_rss_mb=round(peak),
                          baseline_anon_mb=round(base_anon), peak_anon_mb=round(sampler.peak),
                          anon_above_baseline_mb=round(sampler.peak - base_anon),
                          fit_s=round(fit_s, 1),
                          predict_s=round(pred_s, 1), n_labels=int(labels.shape[0]))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=2.0)
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--child", nargs=3)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    d = 784
    n = int(args.gb * 1e9 / (4 * d))
    path = os.path.join(args.dir, "skganem_memmap_bench.f32")
    X = np.memmap(path, dtype=np.float32, mode="w+", shape=(n, d))
    rng = np.random.RandomState(0)
    centers = rng.rand(10, d).astype(np.float32)
    for s in range(0, n, 50000):
        m = min(50000, n - s)
        X[s:s + m] = centers[rng.randint(0, 10, m)] + 0.1 * rng.randn(m, d).astype(np.float32)
    X.flush()
    del X
    try:
        subprocess.run([sys.executable, __file__, "--child", path, str(n), str(d)], check=True)
    finally:
        os.remove(path)


if __name__ == "__main__":
    main()
