"""How often does a label-free score pick the true number of clusters?

For each seed, ``GridSearchCV`` fits the estimator for every K of the grid on 75 % of the rows
and scores it on the other 25 % with the label-free scorers of :mod:`skganem.metrics`
(silhouette in the input space, silhouette in the ``transform`` space, assignment
confidence), all from the same fits (``refit=False``). A scorer "picks" the K it ranks first.
"""

from __future__ import annotations

import json
import time
from functools import partial

import numpy as np
from sklearn.model_selection import GridSearchCV, ShuffleSplit

from skganem import confidence_scorer, silhouette_scorer

from .suite import environment, load_dataset, make_estimator

SCORERS = {
    "silhouette_input": silhouette_scorer,
    "silhouette_transform": partial(silhouette_scorer, space="transform"),
    "confidence": confidence_scorer,
}


def run(dataset, method, ks, seeds, n_iter=None, mnist=None, log=print):
    X, y, _, _ = load_dataset(dataset, mnist)
    true_k = len(np.unique(y))
    records = []
    for seed in seeds:
        est = make_estimator(method, true_k, seed, n_iter=n_iter)
        grid = GridSearchCV(est, {"n_clusters": list(ks)}, scoring=SCORERS, refit=False,
                            cv=ShuffleSplit(1, test_size=0.25, random_state=seed))
        t0 = time.perf_counter()
        grid.fit(X)
        res = grid.cv_results_
        rec = dict(dataset=dataset, method=method, seed=seed, true_k=true_k, ks=list(ks),
                   n_iter=n_iter, seconds=time.perf_counter() - t0, **environment())
        for name in SCORERS:
            scores = res[f"mean_test_{name}"]
            rec[f"{name}_scores"] = [float(s) for s in scores]
            rec[f"{name}_pick"] = int(ks[int(np.argmax(scores))])
        records.append(rec)
        log(json.dumps(rec))
    return records


def markdown(records):
    lines = ["| data set | method | seeds | K grid | " + " | ".join(
        f"{n} picks" for n in SCORERS) + " |", "|" + "---|" * (4 + len(SCORERS))]
    groups = {}
    for r in records:
        groups.setdefault((r["dataset"], r["method"], tuple(r["ks"]), r["n_iter"]), []).append(r)
    for (dataset, method, ks, n_iter), rs in groups.items():
        true_k = rs[0]["true_k"]
        cells = []
        for name in SCORERS:
            picks = [r[f"{name}_pick"] for r in rs]
            hits = sum(p == true_k for p in picks)
            cells.append(f"{hits}/{len(rs)} true K ({', '.join(map(str, picks))})")
        lines.append(f"| {dataset} (K={true_k}) | {method}" +
                     (f", n_iter={n_iter}" if n_iter else "") +
                     f" | {len(rs)} | {', '.join(map(str, ks))} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
