"""Exceptions raised by skganem."""

from sklearn.exceptions import NotFittedError


class DivergenceError(ValueError):
    """Training produced a non-finite loss or weight (the GAN diverged).

    The message names the EM iteration and the quantity that went non-finite. Lower learning
    rates, weight clipping, or a different ``random_state`` usually help.
    """


class NotFittedEstimatorError(NotFittedError):
    """The estimator is used before ``fit``."""


class IncompatibleVersionError(ValueError):
    """A pickled estimator was written by an skganem version this one cannot read."""
