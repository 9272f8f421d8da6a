"""skganem: generative-adversarial clustering with a scikit-learn API.

Estimators
----------
GANEMClustering
    GAN-EM: a conditional GAN in the M-step and an E-net in the E-step.
KMGAN
    KM-GAN: k-means in a GAN discriminator's feature space, with a center loss.
AMMClustering
    AMM / SAMM: an adversarially learned mixture model with a Gaussian-mixture latent space.
"""

from ._version import __version__
from .amm import AMMClustering
from .ganem import GANEMClustering
from .kmgan import KMGAN
from .metrics import (cluster_purity, clustering_accuracy, cluster_purity_scorer,
                      clustering_accuracy_scorer, confidence_scorer, silhouette_scorer)

__all__ = [
    "AMMClustering",
    "GANEMClustering",
    "KMGAN",
    "cluster_purity",
    "cluster_purity_scorer",
    "clustering_accuracy",
    "clustering_accuracy_scorer",
    "confidence_scorer",
    "silhouette_scorer",
    "__version__",
]
