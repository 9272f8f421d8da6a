"""Peak resident memory of fitting and predicting on a large numpy.memmap.

Usage: python benchmarks/memmap_rss.py [--gb 2] [--dir /tmp]

Writes a float32 memmap of about ``--gb`` GB of 784-feature rows (clustered random data),
then in a fresh process measures, during a short GANEMClustering fit (1 EM iteration, small
networks) and a full predict pass: the peak private (anonymous) resident memory against the
interpreter's baseline after importing torch and skganem, and the peak file-backed resident
memory (the mapped file's pages the OS keeps in its page cache: shared and reclaimable, not
copies). ``ru_maxrss`` is not used: Linux carries it over from the parent that wrote the file.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


class AnonSampler:
    """Samples RssAnon (private memory, excluding mapped file pages) every 20 ms."""

    def __init__(self):
        import threading

        self.peak, self.peak_file, self._stop = 0, 0, False
        self.thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def read(field="RssAnon"):
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def _run(self):
        while not self._stop:
            self.peak = max(self.peak, self.read())
            self.peak_file = max(self.peak_file, self.read("RssFile"))
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

    base_anon = AnonSampler.read()
    sampler = AnonSampler().__enter__()
    X = np.memmap(path, dtype=np.float32, mode="r", shape=(n, d))
    from skganem import GANEMClustering

    t0 = time.perf_counter()
    est = GANEMClustering(n_clusters=10, hidden_dims=(128,), n_iter=1, m_epochs=0.02,
                          min_m_steps=50, e_steps=50, random_state=0).fit(X)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    labels = est.predict(X)
    pred_s = time.perf_counter() - t0
    sampler.__exit__()
    print(json.dumps(dict(rows=n, features=d, gb=round(n * d * 4 / 1e9, 2),
                          peak_file_backed_rss_mb=round(sampler.peak_file),
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
