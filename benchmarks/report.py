"""Markdown tables from the suite's JSON records, written into the docs and the README."""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .suite import LABELS, METHODS, ROOT, SKGANEM_METHODS, UMAP_VARIANTS

DATASET_TITLES = {
    "digits": "scikit-learn digits (1,797 8x8 images; scores on the training rows)",
    "mnist10k": ("MNIST-10k (fit on 10,000 rows; ACC/ARI/NMI on them; *test ACC* on 10,000 "
                 "other rows of the file, never seen in training)"),
    "mnist60k": "MNIST, all 60,000 training rows",
    "digits-flat": ("digits as flat rows: a (1797, 64) array of raw pixel values, as "
                    "`load_digits(return_X_y=True)` returns it"),
    "mnist10k-flat": "MNIST-10k as flat rows: a (10000, 784) array of raw pixel values",
    "digits-table": ("digits as a table: the 64 pixel columns through "
                     "`make_pipeline(StandardScaler(), estimator)`"),
    "cancer": ("breast cancer (569 rows, 30 features, classes of 212 and 357 rows) through "
               "`make_pipeline(StandardScaler(), estimator)`"),
    "wine": ("wine (178 rows, 13 features, 3 classes of 59, 71 and 48 rows) through "
             "`make_pipeline(StandardScaler(), estimator)`"),
    "digits-unequal": ("unequal clusters: the digits 0-4 of scikit-learn's digits, 170 / 120 / "
                       "80 / 50 / 30 8x8 images"),
    "mnist-unequal": ("unequal clusters: the digits 0-4 of MNIST, 1,000 / 700 / 400 / 250 / 150 "
                      "images (*test ACC* on as many other images of each digit)"),
}


def latest(records):
    """One record per (data set, method, seed): the last one written."""
    keep = OrderedDict()
    for r in records:
        keep[(r["dataset"], r["method"], r["seed"])] = r
    return list(keep.values())


def _ms(values, digits=3):
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def _num(value):
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def dataset_table(records, dataset):
    rows = [r for r in latest(records) if r["dataset"] == dataset]
    if not rows:
        return ""
    has_test = any(r.get("n_test") for r in rows)
    head = ["method", "seeds", "ACC", "ACC per seed", "purity", "ARI", "NMI"] + \
        (["test ACC"] if has_test else []) + ["fit s", "predict rows/s", "peak RSS MB", "device"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method in METHODS:
        rs = [r for r in rows if r["method"] == method]
        failed = [r for r in rs if "error" in r]
        rs = sorted((r for r in rs if "error" not in r), key=lambda r: r["seed"])
        if failed:
            lines.append(f"| {LABELS.get(method, method)} | "
                         f"{', '.join(str(r['seed']) for r in failed)} | failed: "
                         f"{failed[0]['error'][:80]} |" + " |" * (len(head) - 3))
        if not rs:
            continue
        label = LABELS.get(method, method)
        if rs[0].get("form", "images") != "images":
            label = label.replace(" on pixels", "")
        if method in SKGANEM_METHODS:
            extra = "".join(f", {k}={v}" for k, v in rs[0].get("params", {}).items())
            runs = rs[0].get("n_runs")
            extra += f", best of {runs} runs" if runs and runs > 1 else ""
            label += f" (n_iter={rs[0]['n_iter']}{extra})"
        cells = [label, ", ".join(str(r["seed"]) for r in rs),
                 _ms([r["acc"] for r in rs]),
                 " / ".join(f"{r['acc']:.3f}" for r in rs),
                 _ms([r.get("purity") for r in rs]),
                 _ms([r["ari"] for r in rs]),
                 _ms([r["nmi"] for r in rs])]
        if has_test:
            cells.append(_ms([r.get("test_acc") for r in rs]))
        cells += [_num(np.mean([r["fit_seconds"] for r in rs])),
                  _num(np.mean([r["predict_rows_per_s"] for r in rs])),
                  _num(max(r["peak_rss_mb"] for r in rs)),
                  ", ".join(sorted({r["device"] for r in rs}))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def environment_line(records):
    rs = latest(records)
    def vals(key):
        return ", ".join(sorted({str(r.get(key)) for r in rs}))
    return (f"torch {vals('torch')}, scikit-learn {vals('sklearn')}, {vals('cpus')} CPU cores, "
            f"GPU: {vals('gpu')}, commits {vals('commit')}.")


def suite_markdown(records):
    parts = []
    for dataset in DATASET_TITLES:
        table = dataset_table(records, dataset)
        if table:
            parts.append(f"### {DATASET_TITLES[dataset]}\n\n{table}\n")
    if not parts:
        return "No suite results recorded yet.\n"
    parts.append(
        "Mean ± standard deviation over the seeds listed; fit seconds and predict throughput "
        "are means, peak RSS is the largest peak resident memory of the fitting process "
        "(each fit runs in a fresh process, so this includes Python, torch and the data). "
        "Measured with " + environment_line(records) + "\n")
    return "\n".join(parts)


def best_umap(records, dataset="mnist10k"):
    """The UMAP + GaussianMixture variant with the highest mean ACC on ``dataset``."""
    rows = [r for r in latest(records) if "error" not in r and r["dataset"] == dataset]
    means = {m: np.mean([r["acc"] for r in rows if r["method"] == m])
             for m in ("umap-gmm",) + UMAP_VARIANTS if any(r["method"] == m for r in rows)}
    return max(means, key=means.get) if means else None


def headline_markdown(records):
    rows = [r for r in latest(records) if "error" not in r]
    umap = best_umap(records)
    shown = [m for m in METHODS if not m.startswith("umap-gmm")] + ([umap] if umap else [])
    lines = ["| method | digits ACC | MNIST-10k ACC | MNIST-10k test ACC | MNIST-10k fit s |",
             "|---|---|---|---|---|"]
    for method in shown:
        d = [r for r in rows if r["method"] == method and r["dataset"] == "digits"]
        m = [r for r in rows if r["method"] == method and r["dataset"] == "mnist10k"]
        if not d and not m:
            continue
        lines.append(f"| {LABELS.get(method, method)} | {_ms([r['acc'] for r in d])} | "
                     f"{_ms([r['acc'] for r in m])} | {_ms([r.get('test_acc') for r in m])} | "
                     f"{_num(np.mean([r['fit_seconds'] for r in m])) if m else '—'} |")
    return "\n".join(lines) + "\n"


def replace_between(path, tag, text):
    """Replace the text between ``<!-- BEGIN tag -->`` and ``<!-- END tag -->`` in ``path``."""
    path = Path(path)
    src = path.read_text()
    pattern = re.compile(rf"(<!-- BEGIN {tag} -->\n).*?(<!-- END {tag} -->)", re.S)
    if not pattern.search(src):
        raise ValueError(f"{path} has no <!-- BEGIN {tag} --> / <!-- END {tag} --> markers")
    path.write_text(pattern.sub(lambda m: m.group(1) + text + m.group(2), src))


def kselect_markdown(records):
    from .kselect import markdown

    return ("## Choosing K without labels\n\nCommand: `python -m benchmarks kselect` (GridSearchCV "
            "over `n_clusters`, one fit per K on 75 % of the rows, scored on the other 25 %; "
            "a scorer picks the K it ranks first).\n\n" + markdown(records))


def write(records, docs=ROOT / "docs" / "benchmarks.md", readme=ROOT / "README.md",
          kselect_records=None):
    replace_between(docs, "suite", suite_markdown(records))
    replace_between(readme, "headline", headline_markdown(records))
    if kselect_records:
        replace_between(docs, "kselect", kselect_markdown(kselect_records))
