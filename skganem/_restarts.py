"""The training runs of one fit (``n_init``), side by side in worker processes on a CPU.

The runs of a fit are independent: each has its own generator, seeded from the estimator's
``random_state``. On a CPU the small networks of these estimators use extra torch threads
poorly: on 2 cores, five GAN-EM iterations on the 8x8 digits took 23-26 s with 2 threads and
28 s with 1, while three runs of one thread side by side took 41-45 s together, against
68-77 s for three runs one after another with 2 threads. So with ``T >= 2`` torch threads the
runs go to ``min(n_init, 2 * T)`` worker processes with ``max(1, T // workers)`` threads each.
A run in a worker computes exactly what it computes in the fitting process at that thread
count, so a fit's result depends on the thread count, as every fit does. On a GPU, with
``compile=True``, with one thread, for memory-mapped data and in daemonic processes the runs
go one after another in the fitting process (:func:`restart_workers`).
"""

from __future__ import annotations

import multiprocessing
import threading
import warnings

import torch

from ._engines import Callback, ProgressBar


def restart_workers(n_init: int, device: torch.device, compiled: bool,
                    memory_mapped: bool = False) -> int:
    """Worker processes for ``n_init`` runs: up to two per torch thread on a CPU, else 1
    (the runs go one after another in this process).

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
    """Sends a worker's progress to the fitting process, which shows it (:func:`_relay`)."""

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
    """Show the workers' progress with one :class:`ProgressBar` per run, until ``None``."""
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


def _run_in_worker(estimator, X, labels, seed, restart, n_init, threads, progress):
    """One run in a worker process; its warnings travel back with the result."""
    torch.set_num_threads(threads)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = estimator._restart(X, labels, seed, torch.device("cpu"), restart, n_init,
                                 progress=progress)
    run["warnings"] = [(w.category, str(w.message)) for w in caught]
    return run


def run_in_workers(estimator, X, labels, seeds, workers: int) -> list[dict]:
    """Run ``estimator._restart`` for each seed in ``workers`` processes (joblib's loky).

    Returns the runs in the order of ``seeds``; warnings raised in a run are raised again
    here, and with ``verbose`` each run's progress bar is shown by this process. The workers
    are started for this fit and stopped before it returns (about 3 s to start them on 2
    cores), so that no idle process outlives the fit: a process that fitted in a
    ``multiprocessing`` child would otherwise wait for them when it exits.
    """
    from joblib.externals.loky import ProcessPoolExecutor

    threads = max(1, torch.get_num_threads() // workers)
    env = {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                           "OPENBLAS_NUM_THREADS")}
    # the workers need the fitted scaling and shapes, not a previous fit's networks
    shipped = object.__new__(type(estimator))
    shipped.__dict__.update({k: v for k, v in estimator.__dict__.items() if k != "engine_"})
    n_init = len(seeds)
    manager = relay = queue = None
    if estimator.verbose:
        manager = multiprocessing.Manager()
        queue = manager.Queue()
        names = [f"{type(estimator).__name__} run {i + 1}/{n_init}" for i in range(n_init)]
        relay = threading.Thread(target=_relay, args=(queue, names), daemon=True)
        relay.start()
    executor = ProcessPoolExecutor(max_workers=workers, env=env)
    try:
        futures = [executor.submit(_run_in_worker, shipped, X, labels, int(seed), i, n_init,
                                   threads, queue)
                   for i, seed in enumerate(seeds)]
        runs = [future.result() for future in futures]
    except BaseException:  # an error in a run, or an interrupt: stop the other runs
        executor.shutdown(wait=True, kill_workers=True)
        raise
    else:
        executor.shutdown(wait=True)
    finally:
        if manager is not None:
            queue.put(None)
            relay.join()
            manager.shutdown()
    for run in runs:
        for category, message in run.pop("warnings"):
            warnings.warn(message, category, stacklevel=4)
    return runs
