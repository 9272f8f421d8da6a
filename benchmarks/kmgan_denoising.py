"""KM-GAN's autoencoder pretrained as a denoising autoencoder, on the digits images.

    python -m benchmarks.kmgan_denoising --variants base gauss:0.2 mask:0.2 \\
        --seeds 0 1 2 3 4 5 6 7 8 9 --jobs 2 --out denoising.jsonl

Each fit is ``KMGAN(10, random_state=seed)`` with its defaults on the ``(1797, 8, 8)`` digits
images (perceptrons), in a fresh process with one torch thread; only the pretraining step
changes: the autoencoder encodes a corrupted copy of each batch and is scored on
reconstructing the clean batch (``gauss:S``: Gaussian noise of standard deviation ``S`` on
the ``[-1, 1]`` scale; ``mask:P``: a share ``P`` of the pixels set to the background value
-1, the masking noise of stacked denoising autoencoders as DEC pretrains them). ``base`` is
the unchanged estimator. One JSON line per fit: variant, seed, ACC, seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def _corrupt(kind: str, level: float):
    import torch

    def corrupt(x):
        if kind == "gauss":
            return x + level * torch.randn_like(x)
        if kind == "mask":
            return torch.where(torch.rand_like(x) >= level, x, torch.full_like(x, -1.0))
        raise ValueError(f"unknown corruption {kind!r}")
    return corrupt


def worker(variant: str, seed: int) -> dict:
    """One fit in this process."""
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    from skganem import KMGAN, clustering_accuracy
    from skganem._engines import kmgan
    from skganem._losses import reconstruction_loss
    from skganem._networks import clip_weights_

    torch.set_num_threads(1)
    if variant != "base":
        kind, level = variant.split(":")
        corrupt = _corrupt(kind, float(level))

        def step_pretrain(self, x):  # the engine's pretraining step, input corrupted
            loss = reconstruction_loss(x, self.G(self.R(self.D(corrupt(x)))))
            self._adam(self.opt_pre, loss)
            clip_weights_(self.D, self.config.clip_value)
            return {"loss_rec": loss.detach()}

        kmgan.KMGANEngine._step_pretrain = step_pretrain
    X, y = load_digits(return_X_y=True)
    start = time.perf_counter()
    est = KMGAN(10, random_state=seed).fit(X.reshape(-1, 8, 8).astype(np.float32))
    return {"variant": variant, "seed": seed,
            "acc": round(float(clustering_accuracy(y, est.labels_)), 4),
            "seconds": round(time.perf_counter() - start, 1)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["base", "gauss:0.2", "mask:0.2"])
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="kmgan_denoising.jsonl")
    parser.add_argument("--worker", nargs=2, metavar=("VARIANT", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]))), flush=True)
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def fit(job):
        out = subprocess.run([sys.executable, "-m", "benchmarks.kmgan_denoising", "--worker",
                              job[0], str(job[1])], env=env, capture_output=True, text=True,
                             check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    jobs = [(v, s) for v in args.variants for s in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool, open(args.out, "a") as f:
        for record in pool.map(fit, jobs):
            print(json.dumps(record), flush=True)
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
