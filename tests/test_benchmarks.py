"""The benchmark suite's code (not its numbers): records, reports, overhead, K selection."""

import json

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV

from benchmarks import kselect, overhead, report, suite
from conftest import TINY
from skganem import AMMClustering, GANEMClustering, KMGAN, confidence_scorer, silhouette_scorer


def test_run_writes_records_and_report(tmp_path):
    out = tmp_path / "suite.json"
    recs = suite.run(["digits"], ["kmeans", "kmeans-pca50"], [0, 1], out=out,
                     fresh_process=False, log=lambda *_: None)
    assert len(recs) == 4
    saved = json.loads(out.read_text())
    assert [(r["method"], r["seed"]) for r in saved] == [
        ("kmeans", 0), ("kmeans", 1), ("kmeans-pca50", 0), ("kmeans-pca50", 1)]
    for r in saved:
        assert 0.7 < r["acc"] <= 1 and 0 < r["ari"] <= 1 and 0 < r["nmi"] <= 1
        assert r["fit_seconds"] > 0 and r["predict_rows_per_s"] > 0
        assert r["peak_rss_mb"] >= r["rss_before_fit_mb"] > 0
        assert r["device"] == "cpu" and r["torch"] and r["commit"]
    # --skip-done: nothing is refitted
    assert suite.run(["digits"], ["kmeans"], [0, 1], out=out, skip_done=True,
                     fresh_process=False, log=lambda *_: None) == []

    md = report.suite_markdown(saved)
    assert "| `KMeans` on pixels | 0, 1 | 0.79" in md
    assert "0.79" in md and "± 0.00" in md
    docs, readme = tmp_path / "bench.md", tmp_path / "README.md"
    docs.write_text("a\n<!-- BEGIN suite -->\nold\n<!-- END suite -->\nb\n")
    readme.write_text("<!-- BEGIN headline -->\n<!-- END headline -->\n")
    report.write(saved, docs=docs, readme=readme)
    assert "old" not in docs.read_text() and docs.read_text().startswith("a\n")
    assert "PCA(50) + `KMeans` | 0.79" in readme.read_text()
    with pytest.raises(ValueError, match="markers"):
        report.replace_between(tmp_path / "suite.json", "suite", "x")


def test_report_keeps_the_latest_record_per_seed():
    old = dict(dataset="digits", method="kmeans", seed=0, acc=0.1)
    new = dict(old, acc=0.9)
    assert report.latest([old, new]) == [new]


def test_mnist10k_split_is_disjoint(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.randint(0, 255, size=(20500, 28, 28), dtype=np.uint8)
    X[:, 0, 0] = np.arange(20500) % 251  # makes rows distinguishable
    X[:, 0, 1] = np.arange(20500) // 251
    y = rng.randint(0, 10, size=20500).astype(np.uint8)
    path = tmp_path / "m.npz"
    np.savez(path, X=X, y=y)
    Xtr, ytr, Xte, yte = suite.load_dataset("mnist10k", path)
    assert Xtr.shape == (10000, 28, 28) and Xte.shape == (10000, 28, 28)
    keys = lambda A: set(map(tuple, A[:, 0, :2].astype(int)))  # noqa: E731
    assert not keys(Xtr) & keys(Xte)
    with pytest.raises(ValueError, match="unknown data set"):
        suite.load_dataset("cifar", path)


def test_unequal_sets_hold_their_class_counts_and_disjoint_test_rows(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.randint(0, 255, size=(6000, 28, 28), dtype=np.uint8)
    X[:, 0, 0] = np.arange(6000) % 251  # makes rows distinguishable
    X[:, 0, 1] = np.arange(6000) // 251
    y = rng.permutation(np.repeat(np.arange(10), [2000, 1400, 800, 500, 300] + [200] * 5))
    path = tmp_path / "m.npz"
    np.savez(path, X=X, y=y)
    Xtr, ytr, Xte, yte = suite.load_dataset("mnist-unequal", path)
    counts = list(suite.UNEQUAL_COUNTS["mnist-unequal"])
    assert np.bincount(ytr).tolist() == counts == np.bincount(yte).tolist()
    keys = lambda A: set(map(tuple, A[:, 0, :2].astype(int)))  # noqa: E731
    assert not keys(Xtr) & keys(Xte)
    Xd, yd, Xdt, _ = suite.load_dataset("digits-unequal")
    assert Xd.shape[1:] == (8, 8) and Xdt is None
    assert np.bincount(yd).tolist() == list(suite.UNEQUAL_COUNTS["digits-unequal"])


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="unknown method 'x'"):
        suite.make_estimator("x", 3, 0)


@pytest.mark.parametrize("cls,method", [(GANEMClustering, "ganem"), (KMGAN, "kmgan"),
                                        (AMMClustering, "amm")])
def test_overhead_bare_loop_runs_the_same_networks(blobs, cls, method):
    X, _ = blobs
    rec = overhead.measure(method, X, lambda n_iter: cls(**dict(TINY[cls], n_iter=n_iter,
                                                              random_state=0)),
                           extra_iters=1, log=lambda *_: None)
    assert rec["engine_s_per_iter"] > 0 and rec["bare_s_per_iter"] > 0
    assert rec["ratio"] == pytest.approx(rec["engine_s_per_iter"] / rec["bare_s_per_iter"])


def test_silhouette_scorer_picks_the_true_k():
    X, _ = make_blobs(300, centers=4, n_features=3, cluster_std=0.5, random_state=0)
    grid = GridSearchCV(KMeans(n_init=3, random_state=0), {"n_clusters": [2, 3, 4, 5, 6]},
                        scoring=silhouette_scorer, cv=[(np.arange(300), np.arange(300))]).fit(X)
    assert grid.best_params_ == {"n_clusters": 4}
    est = grid.best_estimator_
    assert silhouette_scorer(est, X, space="transform") > 0
    with pytest.raises(ValueError, match="space"):
        silhouette_scorer(est, X, space="latent")


def test_label_free_scorers_on_degenerate_and_probabilistic_models(blobs):
    X, _ = blobs
    one = KMeans(n_clusters=1, n_init=1).fit(X)
    assert silhouette_scorer(one, X) == -1.0
    gmm = GaussianMixture(3, random_state=0).fit(X)
    assert 1 / 3 <= confidence_scorer(gmm, X) <= 1.0


def test_kselect_markdown_counts_hits():
    recs = [dict(dataset="digits", method="ganem", ks=[8, 10], n_iter=6, true_k=10,
                 **{f"{n}_pick": p for n, p in zip(kselect.SCORERS, (10, 8, 8))})
            for _ in range(2)]
    md = kselect.markdown(recs)
    assert "2/2 true K (10, 10)" in md and "0/2 true K (8, 8)" in md
    assert "2/2 true K" in report.kselect_markdown(recs)


def test_tables_show_purity_beside_acc():
    from benchmarks import report

    rec = dict(dataset="digits", method="kmeans", seed=0, acc=0.8, purity=0.85, ari=0.6,
               nmi=0.7, fit_seconds=1.0, predict_rows_per_s=1e5, peak_rss_mb=100.0,
               device="cpu")
    table = report.dataset_table([rec], "digits")
    head, _, row = table.splitlines()[:3]
    cells = [c.strip() for c in head.split("|")]
    assert cells.index("purity") == cells.index("ACC per seed") + 1
    assert "0.850" in row


def test_tables_list_seeds_and_their_acc_in_seed_order():
    """Records written out of order (fits run in parallel) still line up seed by seed."""
    base = dict(dataset="digits", method="kmeans", purity=0.9, ari=0.6, nmi=0.7,
                fit_seconds=1.0, predict_rows_per_s=1e5, peak_rss_mb=100.0, device="cpu")
    recs = [dict(base, seed=1, acc=0.7), dict(base, seed=0, acc=0.6), dict(base, seed=2, acc=0.8)]
    row = report.dataset_table(recs, "digits").splitlines()[2]
    cells = [c.strip() for c in row.split("|")]
    assert cells[2] == "0, 1, 2" and cells[4] == "0.600 / 0.700 / 0.800"


def test_amm_variants_records_both_scorings_and_diagnostics(tmp_path):
    from benchmarks import amm_variants

    out = tmp_path / "amm.jsonl"
    amm_variants.main(["--setting", 'short={"n_iter": 1, "conv_channels": [8, 16]}',
                       "--datasets", "digits", "--seeds", "0", "--out", str(out)])
    (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert rec["name"] == "short" and rec["n_iter"] == 1, rec.get("error")
    assert 0 <= rec["acc"] <= 1 and 0 <= rec["acc_bayes"] <= 1
    assert sum(rec["sizes"]) == 1797
    assert {"sigma_y", "mu_y_spread", "grad_ratio_zx"} <= set(rec["history"][0])


def test_trajectory_records_every_iteration_of_the_unrecorded_fit(tmp_path):
    """One line per iteration (0 = the initial assignments) and a final record; the recording
    draws no random numbers, so the final labels are those of a plain fit."""
    from benchmarks import trajectory
    from skganem.metrics import clustering_accuracy

    params = dict(TINY[GANEMClustering], n_iter=2)
    out = tmp_path / "traj.jsonl"
    (result,) = trajectory.run([("t", "ganem", "wine", 0, dict(params))], out)
    assert result["rc"] == 0, result["error"]
    iters, finals = trajectory.summary(out)
    assert [r["it"] for r in iters[("t", 0)]] == [0, 1, 2]
    assert all(0 <= r["acc"] <= 1 and -1 <= r["sil"] <= 1 and 0 < r["conf"] <= 1
               for r in iters[("t", 0)])
    X, y, _, _ = suite.load_dataset("wine")
    plain = GANEMClustering(n_clusters=3, random_state=0, device="cpu", **params).fit(X)
    assert finals[("t", 0)]["acc"] == round(float(clustering_accuracy(y, plain.labels_)), 4)


def test_speed_table_takes_medians_and_per_round_ratios():
    from benchmarks import speed

    def rec(side, round_, gd, predict, fit=None):
        r = {"method": "ganem", "side": side, "round": round_, "rates": {"G/D": gd},
             "batches": {"G/D": 128}, "predict_rows_per_s": predict}
        if fit:
            r.update(fit_seconds=fit, fit_acc=0.9, fit_iterations=22)
        return r

    records = [rec("baseline", 0, 10.0, 100.0, 300.0), rec("working tree", 0, 12.0, 100.0, 250.0),
               rec("working tree", 1, 30.0, 300.0), rec("baseline", 1, 20.0, 300.0),
               rec("baseline", 2, 10.0, 200.0), rec("working tree", 2, 11.0, 180.0)]
    table = speed.markdown(records)
    # medians per side: baseline 10, 20, 10 -> 10; working tree 12, 30, 11 -> 12
    assert "| G/D updates/s | 10.00 | 12.00 | 1.20x (1.10-1.50, 3 rounds) |" in table
    assert "| predict rows/s | 200.00 | 180.00 | 1.00x (0.90-1.00, 3 rounds) |" in table
    assert "| default fit s | 300.0 | 250.0 | 1.20x faster |" in table
    one = speed.markdown(records[:2])
    assert "| G/D updates/s | 10.00 | 12.00 | 1.20x |" in one


def test_speed_rounds_alternate_the_trees_and_fit_once(tmp_path, monkeypatch):
    from benchmarks import speed

    calls = []

    def fake_run_tree(tree, method, threads, mnist, do_fit, device="cpu", params=None):
        calls.append((tree, do_fit))
        return {"method": method, "rates": {"G/D": 1.0}, "batches": {"G/D": 128},
                "predict_rows_per_s": 1.0}

    monkeypatch.setattr(speed, "_run_tree", fake_run_tree)
    records = speed.run(str(speed.ROOT), methods=("ganem",), repeats=3, fit=True,
                        baseline_fit=True, out=tmp_path / "speed.json", mnist=tmp_path / "m")
    root = speed.ROOT
    # both sides are the working tree folder here; the records' sides show the order
    assert [r["side"] for r in records] == ["baseline", "working tree", "working tree",
                                           "baseline", "baseline", "working tree"]
    assert [r["round"] for r in records] == [0, 0, 1, 1, 2, 2]
    assert [fit for _, fit in calls] == [True, True, False, False, False, False]
    assert all(tree == root for tree, _ in calls)


def test_restart_criteria_records_a_run_and_ranks_triples(tmp_path):
    from benchmarks import restart_criteria as rc

    out = tmp_path / "crit.jsonl"
    params = dict(TINY[GANEMClustering], n_iter=1)
    params.pop("n_init")
    rc.run("digits", [0], out, params=params)
    (rec,) = rc.load(out)
    assert rec["seed"] == 0 and 0 <= rec["acc"] <= 1 and -1 <= rec["sil"] <= 1
    assert all(0 <= rec[name] <= 1 for name in ("conf", "aug_agree", "gen_nn"))
    # four runs whose ACC follows "conf" and runs against "gen_nn"
    runs = [dict(acc=a, sil=0.5, conf=a, aug_agree=a, gen_nn=1 - a)
            for a in (0.9, 0.8, 0.7, 0.95)]
    table = rc.summary(runs, low=0.75)
    assert table["conf"]["pick"] == pytest.approx(table["best"]["pick"])
    assert table["conf"]["spearman"] == pytest.approx(1.0)
    assert table["gen_nn"]["spearman"] == pytest.approx(-1.0)
    assert table["single"]["pick"] == pytest.approx(0.8375)
    assert table["single"]["low"] == pytest.approx(0.25)
    # gen_nn picks the worst run of each triple: 0.7 in three of the four triples
    assert table["gen_nn"]["low"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="at least 3"):
        rc.summary(runs[:2])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_resume_continues_a_stopped_fit_and_a_fresh_one_to_the_uninterrupted_result(tmp_path):
    """A checkpoint after iteration 3 of 4 stands for a call stopped by its budget: the next
    call runs the last iteration, and the result is the uninterrupted fit's."""
    import joblib
    import torch

    from benchmarks import resumable
    from skganem.metrics import clustering_accuracy

    X, y, _, _ = suite.load_dataset("digits")
    params = dict(TINY[GANEMClustering], n_iter=4)
    params.pop("n_init")
    stopped = tmp_path / "stopped"
    full = GANEMClustering(n_clusters=10, random_state=0, n_init=1, checkpoint_every=3,
                           checkpoint_path=stopped / resumable.CHECKPOINT, **params).fit(X)
    assert joblib.load(stopped / resumable.CHECKPOINT).n_iter_ == 3
    expected = round(float(clustering_accuracy(y, full.labels_)), 4)
    threads = torch.get_num_threads()  # the children's floating-point path is this one's
    rec = resumable.step("ganem", "digits", 0, stopped, params=params, threads=threads,
                         log=lambda *a: None)
    assert rec["n_iter"] == 4 and rec["scored"] == "fitted" and rec["acc"] == expected
    progress = [json.loads(line) for line in open(stopped / "progress.jsonl")]
    assert [p["iteration"] for p in progress] == [3]
    # a fresh folder: one call with budget to spare makes the whole fit
    rec = resumable.step("ganem", "digits", 0, tmp_path / "fresh", params=params,
                         threads=threads, log=lambda *a: None)
    assert rec["n_iter"] == 4 and rec["acc"] == expected
    with pytest.raises(ValueError, match="holds another fit"):
        resumable.step("ganem", "digits", 1, tmp_path / "fresh", params=params)


def test_kmgan_game_epochs_records_the_seeding_and_every_game_epoch(tmp_path):
    """One line at the seeding and one per game epoch, then the fit's own ACC, which is that
    of a plain fit: the recording draws no random numbers."""
    from benchmarks import kmgan_game_epochs
    from skganem.metrics import clustering_accuracy

    params = dict(hidden_dims=[16], n_iter=4, pretrain_iter=2, refine_iter=5, n_init=1)
    out = tmp_path / "game.jsonl"
    kmgan_game_epochs.worker(0, params, str(out), dataset="wine")
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["game"] for r in recs[:-1]] == [0, 1, 2]
    assert all(0 <= r["acc"] <= 1 and 0 <= r["acc_refined"] <= 1 for r in recs[:-1])
    X, y, _, _ = suite.load_dataset("wine")
    plain = KMGAN(n_clusters=3, random_state=0, **params).fit(X)
    assert recs[-1]["final"] and recs[-1]["acc"] == round(
        float(clustering_accuracy(y, plain.labels_)), 4)
    assert len(out.read_text().splitlines()) == len(recs)  # the plain fit recorded nothing


def test_mixture_starts_expected_pick_weighs_every_subset():
    from benchmarks.mixture_starts import expected_pick

    # (mean log-likelihood, ACC): the encoder's start, then three k-means++ starts
    fits = [(-2.0, 0.5), (-1.0, 0.9), (-3.0, 0.1), (-2.5, 0.2)]
    assert expected_pick(fits, 0) == 0.5
    # one start: the best (-1.0) is drawn in a third of the draws, else the encoder's wins
    assert expected_pick(fits, 1) == pytest.approx(0.9 / 3 + 0.5 * 2 / 3)
    # two starts: the best is among them in two of the three pairs
    assert expected_pick(fits, 2) == pytest.approx(0.9 * 2 / 3 + 0.5 / 3)
    assert expected_pick(fits, 3) == pytest.approx(0.9)



def test_ganem_starts_replaces_the_start_and_records_the_fit(tmp_path):
    from benchmarks import trajectory

    params = dict(TINY[GANEMClustering], n_iter=1, start="labels")
    out = tmp_path / "starts.jsonl"
    (result,) = trajectory.run([("s", "ganem", "wine", 0, params)], out,
                               worker_module="benchmarks.ganem_starts")
    assert result["rc"] == 0, result["error"]
    iters, finals = trajectory.summary(out)
    assert iters[("s", 0)][0]["acc"] == 1.0  # iteration 0: the true classes
    assert finals[("s", 0)]["n_iter"] == 1 and "start" not in finals[("s", 0)]["params"]


def test_ganem_starts_spectral_start_is_closer_to_the_digits_than_kmeans():
    from sklearn.datasets import load_digits

    from benchmarks.ganem_starts import spectral_labels
    from skganem.metrics import clustering_accuracy

    X, y = load_digits(return_X_y=True)
    labels = spectral_labels(X / 16.0, 10, seed=0)
    assert labels.dtype == np.int64 and labels.shape == y.shape
    kmeans = KMeans(10, n_init=4, random_state=0).fit_predict(X / 16.0)
    assert clustering_accuracy(y, labels) > 0.85 > clustering_accuracy(y, kmeans)
