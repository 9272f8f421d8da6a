"""Training engines: plain PyTorch, no scikit-learn inside.

Each engine owns its networks and optimisers and exposes ``run_iteration`` for training and
``predict_proba`` / ``transform`` / ``generate`` for batched inference. :func:`fit_loop` runs
any engine and records its history.
"""

from ._base import Callback, Engine, ProgressBar, fit_loop

__all__ = ["Callback", "Engine", "ProgressBar", "fit_loop"]
