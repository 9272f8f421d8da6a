"""Command line of the benchmark suite.

    python -m benchmarks run --suite cpu          # every method, digits + MNIST-10k, 3 seeds
    python -m benchmarks run --suite forms        # flat rows and standardized tables
    python -m benchmarks run --suite umap         # UMAP + GMM with 10, 15, 20 neighbours
    python -m benchmarks run --datasets digits --methods ganem kmeans --seeds 0 1 2
    python -m benchmarks report                   # rewrite docs/benchmarks.md and the README
    python -m benchmarks overhead                 # engine vs bare PyTorch loop, s/iteration
    python -m benchmarks speed --baseline COMMIT  # updates/s, rows/s, fit s against COMMIT
    python -m benchmarks kselect --dataset digits --ks 6 8 10 12 14
    python -m benchmarks trajectory --method ganem --dataset mnist10k --seeds 0 1 2 \
        --params '{"n_iter": 60}' --jobs 3   # ACC and silhouette after every iteration
    python -m benchmarks restarts --dataset digits --seeds 0 1 2 3 4 5  # n_init's criteria
    python -m benchmarks resume --method amm --dataset mnist60k --dir DIR --budget 540
        # one long fit over several commands of limited length, checkpointed in DIR

MNIST is read from ``--mnist``, else ``$SKGANEM_MNIST``, else ``../shared/data/mnist_train.npz``
(an ``.npz`` with ``X``, ``y`` or a folder with the IDX files). The ``gpu`` suite adds the full
60,000 rows; run it on a machine with a GPU (or ask for it on a CPU knowing it takes hours).
"""

from __future__ import annotations

import argparse
import json
import sys

from . import report, suite

RESULTS_DIR = suite.HERE / "results"


def _cmd_run(args):
    if args.suite:
        datasets, methods, seeds = suite.SUITES[args.suite]
    else:
        datasets, methods, seeds = (), (), (0, 1, 2)
    datasets = args.datasets or datasets
    methods = args.methods or methods
    seeds = args.seeds if args.seeds is not None else seeds
    if not datasets or not methods:
        sys.exit("give --suite, or --datasets and --methods")
    suite.run(datasets, methods, seeds, device=args.device, n_iter=args.n_iter,
              mnist=args.mnist, out=args.out, skip_done=args.skip_done, jobs=args.jobs)
    if not args.no_report:
        report.write(suite.load_records(args.out))
        print(report.suite_markdown(suite.load_records(args.out)))


def _cmd_report(args):
    records = suite.load_records(args.out)
    report.write(records, kselect_records=suite.load_records(RESULTS_DIR / "kselect.json"))
    print(report.suite_markdown(records))


def _cmd_overhead(args):
    from . import overhead

    X, _, _, _ = suite.load_dataset(args.dataset, args.mnist)
    records = []
    for method in args.methods:
        def factory(n_iter, method=method):
            est = suite.make_estimator(method, 10, 0, device="cpu", n_iter=n_iter)
            # KM-GAN: time the game's epochs, not its (cheaper) autoencoder pretraining
            return est.set_params(pretrain_iter=0) if method == "kmgan" else est
        records.append(overhead.measure(method, X, factory, extra_iters=args.extra_iters))
    out = RESULTS_DIR / f"overhead_{args.dataset}.json"
    out.write_text(json.dumps(records, indent=1))
    print("| estimator | library s/iter | bare loop s/iter | ratio |\n|---|---|---|---|")
    for r in records:
        print(f"| {r['method']} | {r['engine_s_per_iter']:.2f} | {r['bare_s_per_iter']:.2f} | "
              f"{r['ratio']:.3f} |")


def _cmd_speed(args):
    from . import speed

    records = speed.run(args.baseline, methods=args.methods, threads=args.threads,
                        mnist=args.mnist, fit=not args.no_fit, baseline_fit=args.baseline_fit,
                        out=args.out, device=args.device, params=json.loads(args.params),
                        baseline_params=json.loads(args.baseline_params),
                        repeats=args.repeats)
    table = speed.markdown(records)
    print(table)
    if args.write_docs:
        report.replace_between(suite.ROOT / "docs" / "benchmarks.md", "speed", table)


def _cmd_kselect(args):
    from . import kselect

    records = kselect.run(args.dataset, args.method, args.ks, args.seeds, n_iter=args.n_iter,
                           mnist=args.mnist)
    out = RESULTS_DIR / "kselect.json"
    old = json.loads(out.read_text()) if out.exists() else []
    out.write_text(json.dumps(old + records, indent=1))
    print(kselect.markdown(old + records))


def _cmd_trajectory(args):
    from . import trajectory

    params = json.loads(args.params)
    jobs = [(args.name or args.method, args.method, args.dataset, seed, dict(params))
            for seed in args.seeds]
    trajectory.run(jobs, args.out, jobs_at_once=args.jobs, threads=args.threads,
                   mnist=args.mnist)


def _cmd_resume(args):
    from . import resumable

    rec = resumable.step(args.method, args.dataset, args.seed, args.dir,
                         params=json.loads(args.params), device=args.device,
                         budget=args.budget, threads=args.threads, mnist=args.mnist)
    if rec is not None:
        print(json.dumps(rec))


def _cmd_restarts(args):
    from . import restart_criteria as rc

    if args.seeds:
        rc.run(args.dataset, args.seeds, args.out, params=json.loads(args.params),
               mnist=args.mnist, threads=args.threads, method=args.method)
    records = [r for r in rc.load(args.out) if r["method"] == args.method
               and r["dataset"] == args.dataset]
    if len(records) < 3:
        sys.exit(f"{args.out} holds {len(records)} run(s) of {args.method} on {args.dataset}: "
                 "the summary needs at least 3")
    table = rc.summary(records, low=args.low)
    print(f"| criterion | picked run, mean ACC | picked run below {args.low} | Spearman |")
    print("|---|---|---|---|")
    for name, row in table.items():
        rho = f"{row['spearman']:.2f}" if "spearman" in row else "-"
        share = f"{row['low']:.0%}" if "low" in row else "-"
        print(f"| {name} | {row['pick']:.3f} | {share} | {rho} |")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="fit methods on data sets over seeds")
    p.add_argument("--suite", choices=sorted(suite.SUITES))
    p.add_argument("--datasets", nargs="+", choices=list(suite.DATASETS))
    p.add_argument("--methods", nargs="+", choices=suite.METHODS)
    p.add_argument("--seeds", nargs="+", type=int)
    p.add_argument("--n-iter", type=int, help="iterations of the skganem estimators")
    p.add_argument("--device", default="auto")
    p.add_argument("--mnist", default=None)
    p.add_argument("--out", default=suite.RESULTS)
    p.add_argument("--skip-done", action="store_true",
                   help="skip (data set, method, seed) already in the results file")
    p.add_argument("--no-report", action="store_true", help="do not rewrite the docs")
    p.add_argument("--jobs", type=int, default=1,
                   help="fits at once, each with cpu_count // jobs torch threads")
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("report", help="rewrite docs/benchmarks.md and the README table")
    p.add_argument("--out", default=suite.RESULTS)
    p.set_defaults(func=_cmd_report)
    p = sub.add_parser("overhead", help="library engine vs a bare PyTorch loop")
    p.add_argument("--dataset", default="digits", choices=["digits", "mnist10k"])
    p.add_argument("--methods", nargs="+", default=list(suite.SKGANEM_METHODS),
                   choices=suite.SKGANEM_METHODS)
    p.add_argument("--extra-iters", type=int, default=3)
    p.add_argument("--mnist", default=None)
    p.set_defaults(func=_cmd_overhead)
    p = sub.add_parser("speed", help="working tree against a baseline commit, side by side")
    p.add_argument("--baseline", required=True,
                   help="commit (or ref) to compare against, or a folder with a copy of a tree")
    p.add_argument("--device", default="cpu", help="device of both trees' fits (cpu, cuda)")
    p.add_argument("--out", default=str(RESULTS_DIR / "speed.json"))
    p.add_argument("--methods", nargs="+", default=["ganem", "kmgan", "amm"],
                   choices=suite.SKGANEM_METHODS)
    p.add_argument("--threads", type=int, default=2, help="torch threads of each process")
    p.add_argument("--params", default="{}",
                   help='estimator parameters of the working tree\'s side, as JSON '
                        '(e.g. \'{"precision": "fp32"}\')')
    p.add_argument("--baseline-params", default="{}",
                   help="estimator parameters of the baseline's side, as JSON")
    p.add_argument("--no-fit", action="store_true", help="skip the whole default fit")
    p.add_argument("--baseline-fit", action="store_true",
                   help="also time the baseline's whole default fit (may take hours)")
    p.add_argument("--repeats", type=int, default=1,
                   help="rounds of rate and inference measurements, alternating which tree "
                        "goes first; the table shows medians and the per-round ratios' range")
    p.add_argument("--write-docs", action="store_true",
                   help="put the table into docs/benchmarks.md (between the speed markers)")
    p.add_argument("--mnist", default=None)
    p.set_defaults(func=_cmd_speed)
    p = sub.add_parser("kselect", help="choose n_clusters without labels")
    p.add_argument("--dataset", default="digits", choices=["digits", "mnist10k"])
    p.add_argument("--method", default="ganem", choices=suite.SKGANEM_METHODS)
    p.add_argument("--ks", nargs="+", type=int, default=[6, 8, 10, 12, 14])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--n-iter", type=int, default=None)
    p.add_argument("--mnist", default=None)
    p.set_defaults(func=_cmd_kselect)
    p = sub.add_parser("trajectory", help="ACC and silhouette after every iteration")
    p.add_argument("--method", required=True, choices=suite.SKGANEM_METHODS)
    p.add_argument("--dataset", required=True, choices=list(suite.DATASETS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--params", default="{}", help="estimator parameters, as JSON")
    p.add_argument("--name", default=None, help="label of the records (default: the method)")
    p.add_argument("--jobs", type=int, default=1, help="fits at once")
    p.add_argument("--threads", type=int, default=1, help="torch threads of each fit")
    p.add_argument("--out", default=str(RESULTS_DIR / "trajectory.jsonl"))
    p.add_argument("--mnist", default=None)
    p.set_defaults(func=_cmd_trajectory)
    p = sub.add_parser("resume", help="one long fit split over commands of limited length")
    p.add_argument("--method", required=True, choices=suite.SKGANEM_METHODS)
    p.add_argument("--dataset", required=True, choices=list(suite.DATASETS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dir", required=True, help="folder that keeps the fit between calls")
    p.add_argument("--params", default="{}", help="estimator parameters, as JSON")
    p.add_argument("--device", default="auto")
    p.add_argument("--budget", type=float, default=540.0,
                   help="seconds this call may take, loading and scoring included")
    p.add_argument("--threads", type=int, default=2, help="torch threads of the fit")
    p.add_argument("--mnist", default=None)
    p.set_defaults(func=_cmd_resume)
    p = sub.add_parser("restarts", help="label-free criteria for choosing runs (n_init)")
    p.add_argument("--method", default="ganem", choices=suite.SKGANEM_METHODS)
    p.add_argument("--dataset", default="digits", choices=list(suite.DATASETS))
    p.add_argument("--seeds", nargs="*", type=int, default=None,
                   help="runs to fit and record (none: summarise --out as it is)")
    p.add_argument("--params", default="{}", help="estimator parameters, as JSON")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--low", type=float, default=0.86, help="ACC that counts as a poor run")
    p.add_argument("--out", default=str(RESULTS_DIR / "restart_criteria.jsonl"))
    p.add_argument("--mnist", default=None)
    p.set_defaults(func=_cmd_restarts)
    args = ap.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
