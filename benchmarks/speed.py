"""Training and inference speed of the working tree against a baseline commit, side by side.

For each estimator and each tree (the working tree, and the baseline checked out with
``git worktree``), a fresh process with the same torch thread count measures on MNIST-10k
images (``(10000, 28, 28)``):

- **updates/s of each network group**, from short fits that isolate one phase with public
  parameters only (so that any commit can be measured): GAN-EM's G/D updates (an M-step of
  ``min_m_steps`` updates and a one-update E-step) and E-net updates (a one-update M-step and
  ``e_steps`` updates); KM-GAN's autoencoder pretraining and game updates (one epoch each);
  AMM's game updates (one epoch). The time of an iteration is read from ``history_`` (the
  second iteration, so that one-off costs do not count) less the assignment pass over the rows,
  which is timed on its own;
- **inference rows/s**: ``predict_proba`` on the 10,000 rows;
- **the whole default fit** (``--fit``; for the baseline only with ``--baseline-fit``, since an
  old default may take hours): seconds and ACC.

The two trees run one after the other within one command, on the same machine and thread
count, so the ratios printed at the end compare like with like. A shared machine's speed
drifts by 20 % or more within minutes; ``--repeats N`` measures the rates and inference
``N`` times, alternating which tree goes first (baseline first in the first round), and the
table then shows each side's median and the median and range of the per-round ratios. The
whole fits run in the first round only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "speed.json"
METHODS = ("ganem", "kmgan", "amm")
CLASSES = {"ganem": "GANEMClustering", "kmgan": "KMGAN", "amm": "AMMClustering"}
N_UPDATES = 100  # updates per timed phase


def _phases(method, n, defaults):
    """``{phase: (parameters of a short fit, updates in its second iteration)}``."""
    if method == "ganem":  # its updates are counted, whatever its batch size
        return {"G/D": (dict(min_m_steps=N_UPDATES, m_epochs=1e-9, e_steps=1, n_iter=2),
                        N_UPDATES),
                "E": (dict(min_m_steps=1, m_epochs=1e-9, e_steps=N_UPDATES, n_iter=2),
                      N_UPDATES)}
    epoch = -(-n // defaults["batch_size"])
    if method == "kmgan":
        # the second of two pretraining epochs: n_iter=4 leaves room for them under either
        # cap of pretrain_iter a compared tree may apply (n_iter - 1, or half of n_iter)
        return {"autoencoder": (dict(pretrain_iter=2, n_iter=4), epoch),
                "game": (dict(pretrain_iter=0, n_iter=2), epoch)}
    return {"game": (dict(n_iter=2), epoch)}


def worker(method, threads, mnist, do_fit, out, device="cpu", params="{}"):
    """Measure one estimator in this process (the tree is whatever ``skganem`` imports).

    ``params`` (JSON) are estimator parameters set in every fit of this side, for example
    ``{"precision": "fp32"}`` to time one tree in two settings."""
    import numpy as np
    import torch

    import skganem
    from skganem.datasets import load_mnist
    from skganem.metrics import clustering_accuracy

    torch.set_num_threads(threads)
    X, y = load_mnist(mnist, n_samples=10000, random_state=0)
    X = X.reshape(-1, 28, 28).astype(np.float32)
    cls = getattr(skganem, CLASSES[method])
    base = dict(n_clusters=10, random_state=0, device=device, **json.loads(params))
    defaults = cls(**base).get_params()
    if "tol" in defaults:
        base["tol"] = None  # the phase fits run their iterations in full
    rec = {"method": method, "tree": skganem.__file__, "threads": threads, "device": device,
           "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
           "torch": torch.__version__, "precision": defaults.get("precision", "fp32"),
           "params": json.loads(params),
           "batches": {}, "rates": {}}
    for phase, (params, updates) in _phases(method, X.shape[0], defaults).items():
        params = {k: v for k, v in params.items() if k in defaults}
        est = cls(**base, **params).fit(X)
        _sync(device)
        t = time.perf_counter()
        est.predict_proba(X)
        infer = time.perf_counter() - t
        it_seconds = est.history_[1]["seconds"]
        # GAN-EM's iteration includes its assignment pass w = E(x) over the rows
        spent = it_seconds - (infer if method == "ganem" else 0.0)
        rec["rates"][phase] = round(updates / max(spent, 1e-9), 2)
        # the batch size the fit used (GAN-EM's "auto" schedule resolves it in schedule_)
        used = {**defaults, **getattr(est, "schedule_", {})}
        rec["batches"][phase] = used["e_batch_size" if phase == "E" else "batch_size"]
        rec["predict_rows_per_s"] = round(X.shape[0] / infer, 0)
    if do_fit:
        t = time.perf_counter()
        est = cls(**{k: v for k, v in base.items() if k != "tol"}).fit(X)
        rec["fit_seconds"] = round(time.perf_counter() - t, 1)
        rec["fit_iterations"] = est.n_iter_
        rec["fit_acc"] = round(float(clustering_accuracy(y, est.labels_)), 4)
    Path(out).write_text(json.dumps(rec))


def _sync(device):
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _run_tree(tree, method, threads, mnist, do_fit, device="cpu", params=None):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(threads)}
    # this file's worker, run with the tree's skganem first on the path
    cmd = [sys.executable, "-c",
           "import sys, runpy; sys.path.insert(0, sys.argv[1]);"
           "worker = runpy.run_path(sys.argv[2])['worker'];"
           "worker(sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6] == '1', sys.argv[7],"
           " sys.argv[8], sys.argv[9])",
           str(tree), str(Path(__file__).resolve()), method, str(threads), str(mnist),
           "1" if do_fit else "0", out, str(device), json.dumps(params or {})]
    subprocess.run(cmd, check=True, env=env, cwd=str(tree))
    rec = json.loads(Path(out).read_text())
    os.unlink(out)
    return rec


def _checkout(commit):
    """A detached ``git worktree`` of ``commit`` in a temporary folder."""
    path = Path(tempfile.mkdtemp(prefix="skganem-baseline-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(path),
                    commit], check=True, capture_output=True)
    return path


def _remove(path):
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
                   capture_output=True)


def _short_commit(ref):
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run(baseline, methods=METHODS, threads=2, mnist=None, fit=True, baseline_fit=False,
        out=RESULTS, device="cpu", params=None, baseline_params=None, repeats=1):
    """Measure ``methods`` in the working tree and at ``baseline``; append to ``out``.

    ``baseline`` is a commit (checked out with ``git worktree``), or a folder holding a
    copy of an older tree (its ``skganem/`` package, and a ``COMMIT`` file naming it), for
    machines without the repository's history; ``.`` (the working tree itself) with
    ``params`` and ``baseline_params`` compares two settings of one tree, for example
    ``{"precision": "fp32"}`` against the default. ``repeats`` rounds alternate the order of
    the two trees; the whole fits run in the first round.
    """
    from .suite import mnist_path

    mnist = mnist_path(mnist).resolve()  # the workers run in the trees' folders
    head = _short_commit("HEAD")
    given = Path(baseline)
    if given.is_dir():
        base_tree, owned = given.resolve(), False
        label = given / "COMMIT"
        commit = (label.read_text().strip() if label.exists()
                  else head + "+" if base_tree == ROOT else base_tree.name)
    else:
        commit = _short_commit(baseline)
        base_tree, owned = _checkout(commit), True
    records = []
    try:
        for method in methods:
            sides = [("baseline", base_tree, baseline_fit, baseline_params),
                     ("working tree", ROOT, fit, params)]
            for round_ in range(repeats):
                for label, tree, do_fit, kw in (sides if round_ % 2 == 0 else sides[::-1]):
                    print(f"[speed] {method}: {label} {json.dumps(kw or {})}, round "
                          f"{round_ + 1} of {repeats}", flush=True)
                    rec = _run_tree(tree, method, threads, mnist, do_fit and round_ == 0,
                                    device, kw)
                    rec.update(side=label, round=round_,
                               commit=commit if label == "baseline" else head + "+",
                               time=time.strftime("%Y-%m-%d %H:%M"))
                    rec.pop("tree", None)
                    records.append(rec)
                    print(json.dumps(rec), flush=True)
    finally:
        if owned:
            _remove(base_tree)
    out = Path(out)
    old = json.loads(out.read_text()) if out.exists() else []
    out.write_text(json.dumps(old + records, indent=1))
    return records


def _median(values):
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def markdown(records):
    """One table: each rate for baseline and working tree, and their ratio.

    Update rates are shown with the batch size each side used, and as rows per second
    (updates/s x batch), which is what compares when the default batch size changed. With
    several rounds (``round`` in the records) each side shows its median, and the ratio is
    the median of the per-round ratios with their range.
    """
    lines = ["| estimator | measure | baseline | working tree | ratio |", "|---|---|---|---|---|"]
    for method in METHODS:
        rounds = {}
        for r in records:
            if r["method"] == method:
                rounds.setdefault(r.get("round", 0), {})[r["side"]] = r
        pairs = [(v.get("baseline"), v["working tree"]) for _, v in sorted(rounds.items())
                 if "working tree" in v]
        if not pairs:
            continue
        first_old, first_new = pairs[0]

        def values(get):
            """(baseline values, working-tree values, per-round ratios) of one measure."""
            a = [get(o) for o, _ in pairs if o and get(o)]
            b = [get(n) for _, n in pairs if get(n)]
            ratios = [get(n) / get(o) for o, n in pairs if o and get(o) and get(n)]
            return a, b, ratios

        def cell(v, scale=1.0):
            if not v:
                return "—"
            m = _median(v) * scale
            return f"{m:.2f}" if m < 1000 else f"{m:.0f}"

        def ratio_cell(ratios, scale=1.0):
            if not ratios:
                return "—"
            if len(ratios) == 1:
                return f"{ratios[0] * scale:.2f}x"
            lo, hi = min(ratios) * scale, max(ratios) * scale
            return f"{_median(ratios) * scale:.2f}x ({lo:.2f}-{hi:.2f}, {len(ratios)} rounds)"

        for p in first_new["rates"]:
            def rate(r, p=p):
                return (r or {}).get("rates", {}).get(p)
            a, b, ratios = values(rate)
            ob = (first_old or {}).get("batches", {}).get(p)
            nb = first_new.get("batches", {}).get(p)
            if ob and nb and ob != nb:
                lines.append(f"| `{CLASSES[method]}` | {p} updates/s (batch {ob} / {nb}) | "
                             f"{cell(a)} | {cell(b)} | {ratio_cell(ratios)} |")
                lines.append(f"| `{CLASSES[method]}` | {p} rows/s | {cell(a, ob)} | "
                             f"{cell(b, nb)} | {ratio_cell(ratios, nb / ob)} |")
            else:
                lines.append(f"| `{CLASSES[method]}` | {p} updates/s | {cell(a)} | {cell(b)} | "
                             f"{ratio_cell(ratios)} |")
        a, b, ratios = values(lambda r: (r or {}).get("predict_rows_per_s"))
        lines.append(f"| `{CLASSES[method]}` | predict rows/s | {cell(a)} | {cell(b)} | "
                     f"{ratio_cell(ratios)} |")
        fa, fb = (first_old or {}).get("fit_seconds"), first_new.get("fit_seconds")
        lines.append(f"| `{CLASSES[method]}` | default fit s | {fa or '—'} | {fb or '—'} | "
                     + (f"{fa / fb:.2f}x faster |" if fa and fb else "— |"))
        if first_new.get("fit_acc") is not None:
            lines.append(f"| `{CLASSES[method]}` | default fit ACC (seed 0), iterations | "
                         f"{(first_old or {}).get('fit_acc', '—')} | "
                         f"{first_new['fit_acc']}, {first_new['fit_iterations']} | |")
    return "\n".join(lines) + "\n"
