"""The training runs of one fit (``n_init``), side by side in worker processes on a CPU.

The runs of a fit are independent: each has its own generator, seeded from the estimator's
``random_state``. On a CPU the small networks of these estimators use extra torch threads
poorly: on 2 cores, five GAN-EM iterations on the 8x8 digits took 23-26 s with 2 threads and
28 s with 1, while three runs of one thread side by side took 41-45 s together, against
68-77 s for three runs one after another with 2 threads. So with ``T >= 2`` torch threads the
runs go to ``min(n_init, 2 * T)`` processes, the fitting process and worker processes, with
``max(1, T // processes)`` threads each; each run goes to whichever process is free first, so
that runs of a few seconds end in the fitting process while the workers start. A run computes
exactly the same in a worker and in the fitting process at that thread count, so a fit's
result depends on the thread count, as every fit does, and not on where its runs went. On a
GPU, with ``compile=True``, with one thread, for memory-mapped data and in daemonic processes
the runs go one after another in the fitting process (:func:`restart_workers`).
"""

from __future__ import annotations

import multiprocessing
import threading
import warnings
from concurrent.futures import FIRST_EXCEPTION, wait

import torch

from ._engines import Callback, ProgressBar


def run_name(estimator_name: str, restart: int, n_init: int) -> str:
    """The label of a run's progress bar: the estimator's name, and the run's number when a
    fit makes several."""
    return estimator_name + (f" run {restart + 1}/{n_init}" if n_init > 1 else "")


def restart_workers(n_init: int, device: torch.device, compiled: bool,
                    memory_mapped: bool = False) -> int:
    """Processes for ``n_init`` runs, the fitting process included: up to two per torch
    thread on a CPU, else 1 (the runs go one after another in this process).

    Also 1 with one thread, with compiled networks, for memory-mapped data (each worker
    would receive a copy of the rows, where a run in this process streams them), and in a
    process that may not start children (a daemonic one, such as a ``multiprocessing.Pool``
    worker)."""
    threads = torch.get_num_threads()
    if (n_init < 2 or device.type != "cpu" or compiled or memory_mapped or threads < 2
            or multiprocessing.current_process().daemon):
        return 1
    return min(n_init, 2 * threads)


class QueueProgress(Callback):
    """Sends a run's progress to the fitting process's relay thread, which shows it
    (:func:`_relay`), from a worker or from the fitting process itself."""

    def __init__(self, queue, restart: int):
        self.queue, self.restart = queue, restart

    def on_fit_begin(self, n_iter):
        self.queue.put((self.restart, "begin", n_iter))

    def on_iteration_end(self, record):
        shown = {k: v for k, v in record.items() if isinstance(v, float)}
        self.queue.put((self.restart, "iteration", shown))

    def on_fit_end(self):
        self.queue.put((self.restart, "end", None))


def _relay(queue, names: list[str]) -> None:
    """Show the runs' progress with one :class:`ProgressBar` per run, until ``None``."""
    bars = {}
    for item in iter(queue.get, None):
        restart, event, value = item
        if event == "begin":
            bars[restart] = ProgressBar(names[restart])
            bars[restart].on_fit_begin(value)
        elif event == "iteration":
            bars[restart].on_iteration_end(value)
        else:
            bars.pop(restart).on_fit_end()
    for bar in bars.values():  # runs that ended without their last event (an error)
        bar.on_fit_end()


def _run_at(estimator, X, labels, seed, restart, n_init, threads, progress):
    """One run at ``threads`` torch (and OpenMP/BLAS) threads; its warnings travel back with
    the result, so that a run gives the same record in a worker and in the fitting process."""
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = estimator._restart(X, labels, seed, torch.device("cpu"), restart, n_init,
                                     progress=progress)
    finally:
        torch.set_num_threads(previous)
    run["warnings"] = [(w.category, str(w.message)) for w in caught]
    return run


#: In a worker process: the queue of run indices it takes runs from (:func:`_take_claims`).
_CLAIMS = None


def _take_claims(claims):
    """Worker initializer: keep the fit's queue of run indices."""
    global _CLAIMS
    _CLAIMS = claims


def _claim_runs(estimator, X, labels, seeds, threads, progress, claims=None, stop=None):
    """Take run indices from ``claims`` (a worker: the queue of :func:`_take_claims`) and
    run them until a ``None`` comes.

    The workers and the fitting process all run this, so each run goes to whichever process
    is free first. ``stop()`` (the fitting process) ends it early, before the next claim.
    Returns ``[(index, run), ...]``."""
    claims = _CLAIMS if claims is None else claims
    done = []
    while stop is None or not stop():
        i = claims.get()
        if i is None:
            break
        done.append((i, _run_at(estimator, X, labels, int(seeds[i]), i, len(seeds), threads,
                                progress)))
    return done


def run_in_workers(estimator, X, labels, seeds, workers: int, here: bool = True) -> list[dict]:
    """Run ``estimator._restart`` for each seed in ``workers`` processes: this one and
    ``workers - 1`` worker processes (joblib's loky), each run at ``max(1, T // workers)``
    threads (``here=False``: ``workers`` worker processes, this one waiting).

    The runs go to whichever process is free first. This process starts a run while the
    workers start (about 3 s on 2 cores), so runs of a few seconds end here before the
    workers could take them, and the workers are then stopped unused; longer runs go side
    by side. Where a run goes does not change what it computes.

    Returns the runs in the order of ``seeds``; warnings raised in a run are raised again
    here, and with ``verbose`` each run's progress bar is shown by this process. The workers
    are started for this fit and stopped before it returns, so that no idle process outlives
    the fit: a process that fitted in a ``multiprocessing`` child would otherwise wait for
    them when it exits.
    """
    from joblib.externals.loky import ProcessPoolExecutor
    from joblib.externals.loky.backend.context import get_context

    threads = max(1, torch.get_num_threads() // workers)
    env = {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                           "OPENBLAS_NUM_THREADS")}
    # the workers need the fitted scaling and shapes, not a previous fit's networks
    shipped = object.__new__(type(estimator))
    shipped.__dict__.update({k: v for k, v in estimator.__dict__.items() if k != "engine_"})
    n_init = len(seeds)
    pool = workers - 1 if here else workers
    context = get_context("loky")
    # the run indices, then one None per process that takes runs: each stops at its None
    claims = context.SimpleQueue()
    for item in list(range(n_init)) + [None] * (pool + here):
        claims.put(item)
    manager = relay = progress = None
    if estimator.verbose:
        manager = multiprocessing.Manager()
        progress = manager.Queue()
        names = [run_name(type(estimator).__name__, i, n_init) for i in range(n_init)]
        relay = threading.Thread(target=_relay, args=(progress, names), daemon=True)
        relay.start()
    executor = ProcessPoolExecutor(max_workers=pool, env=env, context=context,
                                   initializer=_take_claims, initargs=(claims,))
    try:
        futures = [executor.submit(_claim_runs, shipped, X, labels, seeds, threads, progress)
                   for _ in range(pool)]

        def failed():  # a worker's run raised: stop claiming, raise it below
            return any(f.done() and f.exception() is not None for f in futures)

        done = (_claim_runs(shipped, X, labels, seeds, threads, progress, claims, failed)
                if here else [])
        if len(done) == n_init:  # the workers took no run: stop them without waiting
            executor.shutdown(wait=True, kill_workers=True)
        else:
            wait(futures, return_when=FIRST_EXCEPTION)  # a failed run ends the waiting
            for future in sorted(futures, key=lambda f: not f.done()):
                done += future.result()
            executor.shutdown(wait=True)
    except BaseException:  # an error in a run, or an interrupt: stop the other runs
        executor.shutdown(wait=True, kill_workers=True)
        raise
    finally:
        if manager is not None:
            progress.put(None)
            relay.join()
            manager.shutdown()
    runs = [run for _, run in sorted(done, key=lambda item: item[0])]
    for run in runs:
        for category, message in run.pop("warnings"):
            warnings.warn(message, category, stacklevel=4)
    return runs
