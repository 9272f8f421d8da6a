"""KM-GAN: how far each game epoch moves the clusters after the autoencoder's pretraining.

    python -m benchmarks.kmgan_game_epochs --seeds 0 1 2 --params '{"n_iter": 40}' --jobs 3

Each seed is one ``KMGAN`` fit in its own process (one torch thread), unchanged but for what
it records. Right after the centers are seeded on the pretrained features, and after every
game epoch, it writes one JSON line: ``game`` (game epochs played), ``acc`` (Hungarian ACC of
the nearest current center) and ``acc_refined`` (ACC after the Lloyd refinement that ``fit``
runs at the end, started from a copy of the current centers), both on eval-mode features, so
``acc_refined`` after ``g`` game epochs is what a fit of ``pretrain_iter + g`` epochs would
give. A last line has the fit's own ``labels_`` ACC, the unseen rows' ACC and the fit's time.
Records: ``benchmarks/results/kmgan_game_epochs.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "kmgan_game_epochs.jsonl"


def worker(seed, params, out, dataset="mnist10k", mnist=None):
    """One fit in this process, recording the refined ACC after each game epoch."""
    import numpy as np
    import torch

    import skganem
    from skganem._device import batch_slices
    from skganem._engines import kmgan
    from skganem._engines._kmeans import lloyd, nearest
    from skganem.metrics import clustering_accuracy

    from .suite import load_dataset

    X, y, X_test, y_test = load_dataset(dataset, mnist)
    k = len(np.unique(y))
    t0 = time.perf_counter()
    played = [0]

    def emit(rec):
        rec.update(seed=seed, params=params, dataset=dataset,
                   t=round(time.perf_counter() - t0, 1))
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def record(engine, data):
        engine.D.eval()
        with torch.no_grad():
            feats = torch.cat([engine._space(data.rows(sl)) for sl in batch_slices(data.n, 1024)])
            now = nearest(feats, engine.centers).cpu().numpy()
            refined = nearest(feats, lloyd(feats, engine.centers.clone(),
                                           engine.config.refine_iter)).cpu().numpy()
        engine.D.train()
        emit(dict(game=played[0], acc=round(float(clustering_accuracy(y, now)), 4),
                  acc_refined=round(float(clustering_accuracy(y, refined)), 4)))
        played[0] += 1

    seed_centers, assignments = kmgan.KMGANEngine._seed_centers, kmgan.KMGANEngine.assignments

    def seeding(self, data, rng, refresh_stats=False):
        seed_centers(self, data, rng, refresh_stats)
        if getattr(self, "playing", False):  # the seeding after the pretraining
            record(self, data)

    def assigning(self, data):
        labels = assignments(self, data)
        if labels is not None:  # after a game epoch
            record(self, data)
        return labels

    kmgan.KMGANEngine._seed_centers, kmgan.KMGANEngine.assignments = seeding, assigning
    try:
        est = skganem.KMGAN(n_clusters=k, random_state=seed, **params).fit(X)
    finally:  # the engine records only this fit
        kmgan.KMGANEngine._seed_centers = seed_centers
        kmgan.KMGANEngine.assignments = assignments
    rec = dict(final=True, acc=round(float(clustering_accuracy(y, est.labels_)), 4),
               fit_s=round(time.perf_counter() - t0, 1), torch=torch.__version__)
    if X_test is not None:
        rec["test_acc"] = round(float(clustering_accuracy(y_test, est.predict(X_test))), 4)
    emit(rec)


def _one(seed, params, out, dataset, mnist):
    code = ("import sys, json, torch; sys.path.insert(0, sys.argv[1]); torch.set_num_threads(1);"
            "from benchmarks.kmgan_game_epochs import worker;"
            "worker(int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4], sys.argv[5],"
            " sys.argv[6])")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", code, str(ROOT), str(seed), json.dumps(params),
                        str(out), dataset, str(mnist)], env=env, cwd=str(ROOT),
                       capture_output=True, text=True)
    if p.returncode:
        print(p.stderr[-800:], file=sys.stderr)
    return p.returncode


def main(argv=None):
    from .suite import mnist_path

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--params", default='{"n_iter": 40}', help="KMGAN parameters, as JSON")
    p.add_argument("--dataset", default="mnist10k")
    p.add_argument("--jobs", type=int, default=3, help="fits at once")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--mnist", default=None)
    args = p.parse_args(argv)
    mnist = mnist_path(args.mnist).resolve()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    params = json.loads(args.params)
    with ThreadPoolExecutor(args.jobs) as pool:
        codes = list(pool.map(lambda s: _one(s, params, Path(args.out).resolve(),
                                             args.dataset, mnist), args.seeds))
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
