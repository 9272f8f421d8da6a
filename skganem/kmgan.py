"""KMGAN: KM-GAN behind a scikit-learn estimator."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ._augment import AUGMENTATIONS, resolve_augmentation
from ._base import BaseGANClustering
from ._engines.kmgan import KMGANConfig, KMGANEngine
from ._networks import NetSpec

#: With ``architecture="auto"``, images whose height and width are at least this many pixels
#: get conv nets; smaller ones perceptrons, which clustered the 8x8 digits better (ACC 0.76
#: against 0.53), while conv nets did better on 28x28 MNIST (``docs/kmgan.md``).
CONV_MIN_SIDE = 16

#: ``hidden_dims="auto"`` by network kind: wider perceptrons clustered the digits and the
#: standardized tables better (``docs/kmgan.md``); the conv nets keep the widths their MNIST
#: figures were measured with.
HIDDEN_DIMS = {"mlp": (500, 500), "conv": (256, 256)}

#: The values of the ``"auto"`` schedule parameters, by network kind. Conv nets pretrain
#: their autoencoder with its own optimiser at an annealed rate and then play a short game:
#: on MNIST-10k the pretrained features alone clustered at ACC 0.77-0.78, three game epochs
#: lifted them to about 0.81, and further game epochs (about four pretraining epochs' time
#: each) added nothing (``docs/kmgan.md``). Perceptrons keep the schedule their tables were
#: measured with.
SCHEDULES = {
    "mlp": dict(n_iter=60, pretrain_lr=None),
    "conv": dict(n_iter=33, pretrain_lr=1e-3),
}


class KMGAN(BaseGANClustering):
    """Clustering with KM-GAN: k-means in a GAN discriminator's feature space.

    Implements Wang et al., "Label-removed generative adversarial networks incorporating
    with K-Means" (Algorithm 1). The discriminator D is a feature extractor with
    ``n_components`` sigmoid outputs. Real centers are seeded by k-means++ on D(X); each step
    labels a real and a generated batch by their nearest centers, updates D on Eq. 5, G on
    Eq. 6, then D and G together on the center loss of Eq. 4, and moves the centers by one
    mini-batch k-means step. With ``lambda_reg > 0`` the generalized losses of Eq. 7 are used;
    ``variant="reduced"`` runs k-means in the input space (Algorithm 2) for comparison.

    Algorithm 1 as published does not cluster (D's features collapse; digits ACC 0.19). Our
    defaults add an autoencoder term through D and G, pretrain it for ``pretrain_iter``
    epochs before seeding the centers, weaken the adversarial terms
    (``adversarial_weight``), refine the centers by Lloyd's k-means on D(X) after the
    last epoch (``refine_iter``) and assign the clusters by a Gaussian mixture fitted on
    D(X) from those clusters (``refine``); ``reconstruction_weight=0, pretrain_iter=0,
    adversarial_weight=1, refine_iter=0`` restores the paper's algorithm. Images of at least
    16x16 pixels get conv nets whose autoencoder pretrains on rotated and shifted copies
    (``architecture="auto"``, ``augmentation="auto"``); smaller images and tables get
    perceptrons.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters ``k``.
    n_components : int, default=10
        Number of sigmoid units of D: the dimension of the feature space and of
        :meth:`transform`. 10 clustered MNIST-10k better than 32 (ACC 0.508 against 0.452,
        3 seeds, with 10 pretraining + 20 game epochs; ``docs/methods.md``).
    image_shape : tuple of int, default=None
        ``(height, width)`` or ``(channels, height, width)`` of each row; conv nets need
        it (``architecture="auto"``, ``"conv"`` or ``"paper"``).
    deskew : bool or "auto", default="auto"
        Deskew single-channel images of at least 16x16 pixels (``"auto"``), all images
        (``True``, which needs images) or none (``False``), as in :class:`GANEMClustering`.
        On MNIST-10k images (seeds 0, 1, 2, 2 threads) deskewed fits gave ACC 0.937 / 0.945
        / 0.954 against 0.846 / 0.907 / 0.882 (``docs/kmgan.md``).
    architecture : {"auto", "mlp", "conv", "paper"}, default="auto"
        ``"auto"``: conv nets for images of at least 16x16 pixels (:data:`CONV_MIN_SIDE`),
        perceptrons for smaller images and for tables. On 28x28 MNIST-10k conv nets with
        ``augmentation="affine"`` reached ACC 0.793-0.806 (mean 0.800) against 0.569 with
        perceptrons (seeds 0-2, 512-514 s against 88 s per fit on 2 CPU cores); on the 8x8
        digits conv nets gave 0.53 against 0.76 (``docs/kmgan.md``). Flat rows that look like square grayscale images
        are treated as images, as in :class:`GANEMClustering`.
        ``"mlp"``: perceptrons on the flattened rows, also for images. ``"conv"``: conv nets
        for any image. ``"paper"``: DCGAN-style conv nets as in the paper's MNIST runs (conv
        64-128-256 and FC 1024 in D; FC 128x7x7, deconv 64, deconv C in G). Slow on a CPU.
    hidden_dims : "auto" or tuple of int, default="auto"
        Hidden widths of the perceptrons (conv nets: the FC layers after the convolutions).
        ``"auto"``: ``(500, 500)`` for perceptrons, ``(256, 256)`` for conv nets
        (:data:`HIDDEN_DIMS`). On the 8x8 digits the wider perceptrons gave mean ACC 0.831
        over seeds 0-9 (lowest 0.800) against 0.798 (lowest 0.717) with ``(256, 256)``, at
        about twice the time; on standardized tables (best of 3 runs, seeds 0-2) digits
        0.822 / 0.802 / 0.809 against 0.806 / 0.707 / 0.768, breast cancer 0.916 / 0.942 /
        0.902 against 0.924 / 0.868 / 0.923, wine 0.938 / 0.955 / 0.983 against 0.944 /
        0.978 / 0.972 (``docs/kmgan.md``).
    conv_channels : tuple of int, default=(32, 64)
        Channels of the convolutional layers.
    noise_dim : int, default=100
        Dimension of the generator's noise ``z ~ N(0, I)`` (100 in Tables 2 and 3).
    batch_size : int, default=64
        Real and generated batch size ``b`` (Algorithm 1: 64). At least 2 (batch normalisation).
    n_iter : int or "auto", default="auto"
        Training epochs (passes over the data), pretraining included; the paper trains MNIST
        for 24. ``"auto"`` (:data:`SCHEDULES`, resolved in ``schedule_``): 33 for conv nets
        (30 pretraining and 3 game epochs), 60 for perceptrons (30 and 30).
    lr : float, default=2e-4
        Adam learning rate of the three updates (beta1 = 0.5).
    clip_value : float or None, default=1.0
        Bounding box ``[-clip_value, clip_value]`` of D's weight clipping (Sec. 4.2.2: [-1, 1]
        on MNIST, [-0.1, 0.1] on CIFAR-10); None disables clipping.
    d_round : float, default=0.0
        Floor of the center loss, Eq. 4's constraint ``L_center >= d_round``: below it the
        loss is clamped and gives no gradient. With D's sigmoid features the loss is at most
        ``n_clusters * n_components`` (100 with the defaults), so the paper's values (10,000
        on MNIST, 20,000 on CIFAR-10, for its unnormalised implementation) would switch the
        center step off entirely; ``fit`` warns when ``d_round`` reaches that bound. 0 is the
        paper's choice on synthetic data.
    lambda_reg : float, default=0.0
        Weight of the generalized terms ``L_intra`` / ``L_inter`` (Eq. 7); 0 disables them.
    variant : {"feature", "reduced"}, default="feature"
        ``"feature"``: k-means on D's features (Algorithm 1). ``"reduced"``: k-means in the
        input space (Algorithm 2); then :meth:`predict` uses the input-space centers.
    reconstruction_weight : float, default=100.0
        Weight of our autoencoder term ``mean (G(R(D(x))) - x)^2`` (R: a linear map from D's
        features to G's input), added to D's loss (Eq. 5) and to the joint center-loss step
        (Eq. 4). Not in the paper: without it D's features collapse and nothing is clustered
        (see ``docs/methods.md``). 0 disables it.
    pretrain_iter : int, default=30
        Epochs of that autoencoder alone before the game (at most ``n_iter - 1``, so that
        the game runs at least one epoch). They are cheap (no generated batch; about a
        fifth of a game epoch) and the seeding depends on them. The real centers are then
        seeded by k-means++ on the pretrained D(X) (ours; 0: seed on the untrained D, as
        Algorithm 1). The autoencoder term and its pretraining belong to
        ``variant="feature"``; the reduced variant runs Algorithm 2 as published.
    pretrain_lr : float, None or "auto", default="auto"
        Initial learning rate of the pretraining's own Adam optimiser (betas 0.9 and 0.999,
        as autoencoders are usually trained), annealed to 0 along a half cosine over the
        ``pretrain_iter`` epochs; the game's updates keep ``lr`` and beta1 = 0.5. None: the
        pretraining shares the joint step's optimiser at its constant ``lr`` and hands its
        state on to the game. ``"auto"`` (:data:`SCHEDULES`): ``1e-3`` for conv nets, None
        for perceptrons (on the 8x8 digits images its own optimiser gave mean ACC
        0.798 at a constant ``2e-4`` and 0.808 from ``1e-3`` annealed, over seeds 0-5,
        against 0.815 with None). On MNIST-10k
        with conv nets, k-means on the features after the 30 pretraining epochs reached ACC
        0.767 / 0.769 / 0.774 (seeds 0-2) with the annealed ``1e-3``, against 0.746 / 0.743
        (seeds 0 / 1) on the game's optimiser; the default fit (30 + 3 epochs) then gave
        0.819 / 0.819 / 0.824 in 84-133 s on 2 CPU cores, against 0.680 / 0.810 / 0.761 in
        423-569 s for 30 + 30 epochs pretrained on the game's optimiser (``docs/kmgan.md``).
    adversarial_weight : float, default=0.1
        Weight of the generated-data term of Eq. 5 and of the center loss (Eq. 4) against the
        real-data term and the reconstruction; 1 is the paper's balance, which collapses the
        features when the reconstruction is on. 0 leaves k-means on an autoencoder (DCN).
        It also switches the generator's own step (Eq. 6) on or off. Adam's updates do not
        depend on a loss's scale, so with ``reconstruction_weight=0`` any positive value
        trains like 1: there it only matters against the real-data term of Eq. 5.
        ``reconstruction_weight=0, pretrain_iter=0, adversarial_weight=1, refine_iter=0``
        is Algorithm 1.
    augmentation : {"auto", "affine", "wide-affine"} or None, default="auto"
        ``"auto"``: ``"affine"`` when the networks are conv nets on images, else None
        (``augmentation_`` holds the choice). ``"affine"``: the autoencoder's pretraining (``pretrain_iter``) sees each image
        rotated by up to 10 degrees and shifted by up to 10 % of its size, drawn afresh for
        every batch, as DEC-DA (Guo et al. 2018) pretrains its autoencoder; the game and the
        seeding of the centers see the images as they are (ours, not the paper's). Needs
        images (``image_shape``, or X of shape ``(n, [channels,] height, width)``) whose
        class survives small rotations and shifts, such as handwritten digits
        (``"wide-affine"``: rotations of up to 25 degrees). On MNIST-10k
        with conv nets it raised ACC from 0.656 ± 0.014 to 0.711 ± 0.060 (benchmark suite,
        seeds 0-2), and to 0.802 ± 0.007 once the center counts started from the seeding;
        on the 8x8 digits it did not help (``docs/kmgan.md``). None trains
        on the rows as given.
    refine_iter : int, default=100
        After the last epoch, at most this many Lloyd iterations of k-means on D(X) of all
        training rows, starting from the game's centers (ours: Algorithm 1 stops at its last
        mini-batch k-means step). On digits (seeds 0-5) it raised ACC from 0.788 to 0.818 on
        average, on MNIST-10k (seeds 0-2) from 0.560 to 0.569 (``docs/methods.md``). 0 keeps
        the mini-batch centers; the reduced variant never refines.
    refine : {"gmm", "kmeans"}, default="gmm"
        What assigns the clusters after the Lloyd refinement (ours, not the paper's).
        ``"gmm"``: a Gaussian mixture with a full covariance per cluster, fitted by EM (at
        most ``refine_iter`` iterations) on D(X) of the training rows, started from Lloyd's
        clusters; :meth:`predict_proba` is its posterior and ``cluster_centers_`` its means.
        D's features are correlated within a cluster, which k-means' spherical clusters
        ignore: on the features of the same fitted runs, ACC rose from 0.820 to 0.848 on the
        8x8 digits images (mean over seeds 0-11), from 0.808 to 0.858 on MNIST-10k (seeds
        0-2) and from 0.932 to 0.961 on wine (seeds 0-5); on breast cancer it fell from
        0.898 to 0.893 and on digits 0-4 in unequal numbers (30-170 images per cluster)
        from 0.784 to 0.779 (``docs/kmgan.md``).
        ``"kmeans"``: the nearest Lloyd center, with
        ``predict_proba = softmax(-||D(x) - c_m||^2 / T)``, as the paper assigns clusters.
        Unused with ``refine_iter=0`` or ``variant="reduced"``.
    temperature : "auto" or float, default="auto"
        Temperature ``T`` of ``predict_proba = softmax(-||D(x) - c_m||^2 / T)`` when the
        clusters are the nearest centers (``refine="kmeans"``). ``"auto"``: the mean squared
        distance of the training rows to their nearest center.
    warm_start : bool, default=False
        If True and the estimator is fitted, ``fit`` continues training the existing networks
        for ``n_iter`` more iterations instead of starting anew.
    checkpoint_path : str or path-like, default=None
        If set, the estimator is saved there (``joblib``) every ``checkpoint_every``
        iterations. ``joblib.load(path)`` gives a fitted estimator (without ``labels_``);
        ``set_params(warm_start=True).fit(X)`` resumes its training.
    checkpoint_every : int, default=1
        Iterations between checkpoints.
    device : str or torch.device, default="auto"
        ``"auto"`` (CUDA when available, else an Apple GPU through MPS, else the CPU),
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0
    tol, n_iter_no_change, n_init, precision, compile
        As in :class:`GANEMClustering`: stop once at most ``tol`` of the rows changed
        cluster in ``n_iter_no_change`` epochs in a row (None: run all ``n_iter``); keep the
        best of ``n_init`` training runs by the silhouette on :meth:`transform` (``"auto"``:
        3 on tables of at most 5,000 rows, else 1); bfloat16 for conv nets where the device
        computes it natively; ``torch.compile``.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
    cluster_centers_ : ndarray of shape (n_clusters, n_components)
        Real centers in D's feature space (input space for ``variant="reduced"``): the
        Gaussian mixture's means with ``refine="gmm"``, else the k-means centers.
    temperature_ : float
        Temperature of :meth:`predict_proba` when the clusters are the nearest centers
        (``refine="kmeans"``, ``refine_iter=0`` or ``variant="reduced"``).
    augmentation_ : str or None
        The augmentation the pretraining used (``augmentation="auto"`` resolved).
    schedule_ : dict
        The ``n_iter`` and ``pretrain_lr`` the fit used (``"auto"`` resolved).
    n_iter_ : int
    converged_ : bool
        Whether training stopped on ``tol`` before ``n_iter`` epochs.
    restart_scores_ : ndarray of shape (n_init,)
        As in :class:`GANEMClustering`: the silhouette of each run (``[nan]`` for one).
    history_ : list of dict
        Per epoch: ``loss_d``, ``loss_g``, ``loss_center``, ``loss_rec`` (means),
        ``cluster_sizes``, ``label_change`` and ``seconds``; the pretraining epochs hold
        ``loss_rec`` only.
    image_shape_, deskew_, scaler_, device_, engine_, n_features_in_, feature_names_in_
        As in :class:`GANEMClustering`.

    Notes
    -----
    ``predict`` gives the nearest real center in D's feature space; ``predict_proba`` a
    softmax of negative squared distances, whose argmax equals ``predict``; ``transform``
    the D features. ``sample`` draws from the unconditional generator and labels the rows
    with :meth:`predict`. Choices where the paper is silent are listed in
    ``docs/methods.md``.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skganem import KMGAN
    >>> X, _ = make_blobs(n_samples=200, centers=3, random_state=0)
    >>> est = KMGAN(n_clusters=3, hidden_dims=(32,), n_iter=2, random_state=0).fit(X)
    >>> est.cluster_centers_.shape
    (3, 10)
    """

    _schedules = SCHEDULES

    _parameter_constraints: dict = {
        **BaseGANClustering._parameter_constraints,
        "noise_dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "clip_value": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "d_round": [Interval(numbers.Real, 0, None, closed="left")],
        "lambda_reg": [Interval(numbers.Real, 0, None, closed="left")],
        "variant": [StrOptions({"feature", "reduced"})],
        "temperature": [StrOptions({"auto"}), Interval(numbers.Real, 0, None, closed="neither")],
        "reconstruction_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "pretrain_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "pretrain_lr": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"auto"}),
                        None],
        "n_iter": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "adversarial_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "refine_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "refine": [StrOptions({"gmm", "kmeans"})],
        "augmentation": [StrOptions({"auto", *AUGMENTATIONS}), None],
        "hidden_dims": [tuple, list, StrOptions({"auto"})],
    }

    def __init__(self, n_clusters=8, *, n_components=10, image_shape=None, deskew="auto",
                 architecture="auto",
                 hidden_dims="auto", conv_channels=(32, 64), noise_dim=100, batch_size=64,
                 n_iter="auto", tol=None, n_iter_no_change=2, n_init="auto", lr=2e-4,
                 clip_value=1.0, d_round=0.0, lambda_reg=0.0, variant="feature",
                 reconstruction_weight=100.0, pretrain_iter=30, pretrain_lr="auto",
                 adversarial_weight=0.1, refine_iter=100, refine="gmm", augmentation="auto",
                 temperature="auto", warm_start=False, checkpoint_path=None,
                 checkpoint_every=1, device="auto", precision="auto", compile=False,
                 random_state=None,
                 verbose=0):
        super().__init__(n_clusters, n_components=n_components, image_shape=image_shape,
                         deskew=deskew,
                         architecture=architecture, hidden_dims=hidden_dims,
                         conv_channels=conv_channels, batch_size=batch_size, n_iter=n_iter,
                         tol=tol, n_iter_no_change=n_iter_no_change, n_init=n_init,
                         warm_start=warm_start, checkpoint_path=checkpoint_path,
                         checkpoint_every=checkpoint_every, device=device,
                         precision=precision, compile=compile, random_state=random_state,
                         verbose=verbose)
        self.noise_dim = noise_dim
        self.lr = lr
        self.clip_value = clip_value
        self.d_round = d_round
        self.lambda_reg = lambda_reg
        self.variant = variant
        self.reconstruction_weight = reconstruction_weight
        self.pretrain_iter = pretrain_iter
        self.pretrain_lr = pretrain_lr
        self.adversarial_weight = adversarial_weight
        self.refine_iter = refine_iter
        self.refine = refine
        self.augmentation = augmentation
        self.temperature = temperature

    def _resolve_hidden_dims(self, kind: str) -> tuple:
        if isinstance(self.hidden_dims, str):  # "auto"
            return HIDDEN_DIMS[kind]
        return tuple(self.hidden_dims)

    def _auto_architecture(self, image_shape) -> str:
        if image_shape is not None and min(image_shape[1:]) >= CONV_MIN_SIDE:
            return "conv"
        return "mlp"

    def _make_engine(self, sample_shape, spec: NetSpec, device):
        self.schedule_ = sched = self._resolve_schedule(spec.kind)
        n_iter = sched["n_iter"]
        image_shape = getattr(self, "image_shape_", None)  # set by fit's validation of X
        self.augmentation_ = augmentation = resolve_augmentation(
            "augmentation", self.augmentation, spec.kind, image_shape)
        # With D's sigmoid features the center loss of Eq. 4 is bounded (each summed center
        # lies in [0, k]^d; the reduced variant's loss sums b rows of [0, 1]^d): a d_round at
        # or above the bound clamps it for good, and Eq. 4 then trains nothing.
        bound = self.n_components * (self.n_clusters if self.variant == "feature"
                                     else self.batch_size)
        if self.d_round >= bound:
            warnings.warn(
                f"d_round={self.d_round} is at least the largest possible center loss "
                f"({bound} = {'n_clusters' if self.variant == 'feature' else 'batch_size'} x "
                "n_components, with D's sigmoid features), so the loss of Eq. 4 is clamped and "
                "gives no gradient: the center step trains nothing. The paper's 10,000 and "
                "20,000 belong to its unnormalised implementation; use 0 or a value below the "
                "bound.", UserWarning, stacklevel=4)
        config = KMGANConfig(
            n_clusters=self.n_clusters, n_components=self.n_components, spec=spec,
            noise_dim=self.noise_dim, batch_size=self.batch_size, lr=self.lr,
            clip_value=self.clip_value, d_round=self.d_round, lambda_reg=self.lambda_reg,
            variant=self.variant, reconstruction_weight=self.reconstruction_weight,
            pretrain_iter=min(self.pretrain_iter, n_iter - 1), pretrain_lr=sched["pretrain_lr"],
            adversarial_weight=self.adversarial_weight, refine_iter=self.refine_iter,
            refine=self.refine,
            augmentation=augmentation, image_shape=image_shape)
        return KMGANEngine(config, sample_shape, device)

    def _set_method_attributes(self):
        engine = self.engine_
        if self.temperature != "auto":
            engine.temperature = torch.tensor(float(self.temperature), device=engine.device)
        self.temperature_ = float(engine.temperature)
        gmm_means = getattr(engine, "gmm_means", None)
        centers = engine.centers if gmm_means is None else gmm_means
        self.cluster_centers_ = centers.detach().cpu().double().numpy()

    def _sample_clusters(self, n_samples, cluster, rng):
        if cluster is not None:
            raise ValueError(
                "KMGAN's generator is unconditional: sample() cannot target a cluster; "
                "draw samples and select them by the returned clusters instead.")
        return np.zeros(n_samples, dtype=np.int64)

    def _sample_labels(self, X, clusters):
        return self.predict(X)
