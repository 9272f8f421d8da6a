"""Helpers for running many fits in parallel (joblib processes, Dask workers).

Each fit already uses all of the process's torch threads. When several fits run side by side
(``GridSearchCV(n_jobs=...)`` or joblib's Dask backend), limit each worker's threads so that
``workers x threads`` does not exceed the cores:

* joblib's default ``loky`` backend sets ``OMP_NUM_THREADS = cpu_count // n_jobs`` in its worker
  processes, which torch honours: nothing to do.
* Dask workers: start them with ``OMP_NUM_THREADS=1`` in their environment (e.g.
  ``dask worker --nthreads 1`` under ``env OMP_NUM_THREADS=1``), or call
  ``client.run(limit_torch_threads, 1)`` once after connecting.
"""

from __future__ import annotations

import os


def limit_torch_threads(n_threads: int = 1) -> int:
    """Limit torch's intra-op threads in this process (run it on each worker).

    Returns the new thread count.
    """
    import torch

    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}.")
    os.environ["OMP_NUM_THREADS"] = str(n_threads)
    torch.set_num_threads(n_threads)
    return torch.get_num_threads()
