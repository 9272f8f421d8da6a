"""Label-free criteria for choosing among training runs on images (``n_init``).

    python -m benchmarks restarts --dataset digits --seeds 0 1 2 3 4 5 --out crit.jsonl
    python -m benchmarks restarts --method kmgan --dataset digits --seeds 0 1 2 3 4 5

Each seed is one run (``n_init=1``, defaults unless ``--params``); after the fit it records
the run's ACC and the criteria below, one JSON line per run. The summary then takes every
triple of the recorded runs and gives, per criterion, the mean ACC of the run the criterion
picks, how often that run is below ``--low``, and the Spearman correlation with ACC:

- ``sil``: silhouette of ``labels_`` on :meth:`transform` (the criterion ``n_init`` uses);
- ``conf``: mean largest ``predict_proba``;
- ``aug_agree``: share of rows whose cluster survives a random rotation and shift
  (``skganem._augment.random_affine``, three draws);
- ``gen_nn`` (GAN-EM only): share of generated samples of cluster ``c`` whose nearest real
  row (pixels) lies in cluster ``c``.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np

CRITERIA = ("sil", "conf", "aug_agree", "gen_nn")


def measure(est, X, y, n_generated=2000, seed=123):
    """ACC and the criteria of a fitted estimator on images ``X`` (the silhouette on the
    rows that ``n_init`` scores, the others on all rows)."""
    import torch

    from skganem import GANEMClustering
    from skganem._augment import random_affine
    from skganem.metrics import clustering_accuracy

    labels = est.labels_
    engine, data = est.engine_, est._data(X)
    rec = {"acc": round(float(clustering_accuracy(y, labels)), 4),
           # the score n_init ranks runs by
           "sil": est._embedding_silhouette(data, labels),
           "conf": float(est.predict_proba(X).max(axis=1).mean())}
    engine.eval()
    with torch.random.fork_rng(), torch.inference_mode():
        torch.manual_seed(seed)
        real = data.rows(slice(0, data.n))
        own = torch.as_tensor(labels, device=real.device)
        rec["aug_agree"] = float(np.mean([
            (engine.predict_proba(random_affine(real, est.image_shape_)).argmax(1) == own)
            .float().mean().item() for _ in range(3)]))
        if isinstance(est, GANEMClustering):  # G(z, c) draws from cluster c
            c = torch.arange(n_generated, device=real.device) % est.n_clusters
            fake = engine.generate(c).reshape(n_generated, -1).float()
            nearest = torch.cdist(fake, real.reshape(len(real), -1).float()).argmin(1)
            rec["gen_nn"] = float((own[nearest] == c).float().mean())
    return {k: round(v, 4) for k, v in rec.items()}


def run(dataset, seeds, out, params=None, mnist=None, threads=1, method="ganem"):
    """Fit one run per seed and append its record to ``out``."""
    import torch

    import skganem

    from .speed import CLASSES
    from .suite import load_dataset

    cls = getattr(skganem, CLASSES[method])
    torch.set_num_threads(threads)
    X, y, _, _ = load_dataset(dataset, mnist)
    k = int(len(np.unique(y)))
    for seed in seeds:
        t = time.perf_counter()
        est = cls(n_clusters=k, random_state=seed, n_init=1, **(params or {})).fit(X)
        rec = {"method": method, "dataset": dataset, "seed": seed, "params": params or {},
               "threads": threads,
               "fit_s": round(time.perf_counter() - t, 1), **measure(est, X, y)}
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)


def summary(records, low=0.86):
    """``{criterion: {"pick": mean ACC of the picked run over all triples, "low": share of
    triples whose pick is below ``low``, "spearman": ...}}``, plus ``"single"`` and
    ``"best"`` (the mean single run and the best of each triple)."""
    from scipy.stats import spearmanr

    if len(records) < 3:
        raise ValueError(f"the summary compares triples of runs: {len(records)} recorded, "
                         "at least 3 needed")
    acc = np.array([r["acc"] for r in records])
    triples = [list(t) for t in itertools.combinations(range(len(records)), 3)]
    out = {"single": {"pick": float(acc.mean()), "low": float(np.mean(acc < low))},
           "best": {"pick": float(np.mean([acc[t].max() for t in triples]))}}
    for name in CRITERIA:
        if not all(name in r for r in records):
            continue
        score = np.array([r[name] for r in records])
        picks = np.array([acc[t][np.argmax(score[t])] for t in triples])
        out[name] = {"pick": float(picks.mean()), "low": float(np.mean(picks < low)),
                     "spearman": float(spearmanr(score, acc).correlation)}
    return out


def load(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
