"""AMMClustering: the Adversarially Learned Mixture Model (AMM / SAMM) as an estimator."""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from scipy.stats import chisquare
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from ._augment import AUGMENTATIONS, resolve_augmentation
from ._base import INFERENCE_BATCH_SIZE, BaseGANClustering
from ._device import batch_slices
from ._engines._amm_paper import MIN_SIZE as PAPER_MIN_SIZE
from ._engines.amm import AMMConfig, AMMEngine
from ._init import ScaledView, kmeans_pca_labels
from ._networks import NetSpec


#: Updates that ``n_iter="auto"`` aims at, whatever the number of rows.
AUTO_UPDATES = 4000

#: Epochs of ``n_iter="auto"`` on small data: at most this many (and at least 10).
AUTO_MAX_EPOCHS = 600

#: ``cluster_weights="auto"`` keeps uniform weights on tables unless a chi-square test rejects
#: equal k-means cluster sizes at this level.
AUTO_WEIGHTS_LEVEL = 0.01


class AMMClustering(BaseGANClustering):
    """Clustering with the Adversarially Learned Mixture Model (AMM) and its SAMM form.

    An ALI/BiGAN-style model with a categorical and a continuous latent variable: the
    inference side ``G_z(x) G_y(x, G_z(x))`` (the factorization of Table 3, with z of Eq. 10
    and the reparameterised categorical of Eq. 8-9) and the synthesis side
    p(y) p(z|y) p(x|y, z) (Eq. 11, the Gaussian mixture prior ``z = G_z(y) + ExpN(zeros)`` of
    Table 4, learned by Eq. 12) are matched by one joint discriminator D(x, y, z) with the
    value function of Eq. 13 (Algorithm 1) and the gradient penalty of Eq. 18. Both encoder
    heads share one trunk (the paper runs two streams); see ``docs/amm.md``.

    Our defaults add terms to the generators' loss, which the paper does not have: a
    latent cycle ``cycle_weight * [CE(mu_y(x~), y) + ||mu_z(x~) - z||^2 / L]`` on synthesised
    rows ``x~ = G_x(y, z)`` (InfoGAN-style) and a reconstruction
    ``reconstruction_weight * ||G_x(G_y(x), G_z(x)) - x||^2`` on real rows (ALICE-style), with
    ``lr=1e-3``; in SAMM the latent cycle also holds ``CE(mu_y(x), y)`` on the labeled rows
    (without it, the labeled game alone did not make cluster k mean class k in our test);
    and on images a consistency term ``consistency_weight * CE(softmax(mu_y(x)), mu_y(T(x)))``
    for rotated and shifted copies ``T(x)`` of the real rows (``augmentation``).
    In our measurements the paper's pure game did not cluster (digits ACC 0.24-0.31 over
    three seeds) and these terms did (docs/amm.md);
    ``cycle_weight=0, reconstruction_weight=0, consistency_weight=0, lr=2e-4`` gives the
    paper's Algorithm 1. With
    ``semi_supervised=True`` the labeled game of Eq. 14 is played on the labeled rows as well
    (SAMM, Algorithm 2), and p(y) is set to the labeled class frequencies.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of mixture components ``K``.
    n_components : int, default=64
        Dimension of the continuous latent z (64 in the paper): the output of
        :meth:`transform`.
    image_shape : tuple of int, default=None
        ``(height, width)`` or ``(channels, height, width)``; selects conv nets.
    deskew : bool or "auto", default="auto"
        Deskew single-channel images of at least 16x16 pixels (``"auto"``), all images
        (``True``, which needs images) or none (``False``), as in :class:`GANEMClustering`.
        On MNIST-10k images (seeds 0, 1, 2, 2 threads) deskewed fits gave ACC 0.959 / 0.940
        / 0.936
        against 0.852 / 0.820 / 0.843 (``docs/amm.md``, "Deskewing").
    architecture : {"auto", "mlp", "conv", "paper"}, default="auto"
        ``"paper"``: the paper's MNIST networks layer by layer (Tables 3, 5, 6: two
        interleaved conv streams in the encoder and the decoder, 2x2/3x3/4x4 kernels without
        padding, 32-128 channels, ``dropout`` on each layer's input), for images of at least
        16x16 pixels; ``hidden_dims`` and ``conv_channels`` are then unused. On 2 CPU cores
        they train at 0.30x the updates per second of the default conv nets; meant for GPUs
        (``docs/amm.md``).
    hidden_dims : tuple of int, default=(256, 256)
    conv_channels : tuple of int, default=(32, 64)
    batch_size : int, default=64
        Mini-batch size ``M``. At least 2 (batch normalisation).
    n_iter : int or "auto", default="auto"
        Maximum number of training epochs. ``"auto"``: as many epochs as make about
        ``4,000`` updates (``ceil(4000 / ceil(n_samples / batch_size))``, between 10 and
        600), so that the length of a fit does not grow with the data: 138 epochs on digits
        (1,797 rows, 29 updates per epoch), 26 on 10,000 MNIST images (about 21-23 s per epoch
        on 2 CPU cores), 445 on breast cancer (569 rows), 600 on wine (178 rows, where 600
        epochs gave a higher mean ACC than 300, ``docs/amm.md``). On the digits images ACC
        still rose after 138 epochs (seeds 0 / 1 / 2: 0.832 / 0.747 / 0.851, after 300 epochs
        0.898 / 0.757 / 0.888, 2.2 times the fit time): pass a number for longer fits.
    lr : float, default=1e-3
        Adam learning rate (beta1 = 0.5). The paper (Sec. 4) uses 2e-4; with the cycle terms
        1e-3 reached higher accuracy in fewer epochs in our measurements.
    gp_weight : float, default=10.0
        ``lambda`` of the gradient penalty (Eq. 18): 10 on MNIST, 0.01 on SVHN in the paper;
        0 disables it.
    cycle_weight : float, default=1.0
        Weight of the latent cycle term (ours, see above); 0 disables it.
    reconstruction_weight : float, default=1.0
        Weight of the reconstruction term (ours, see above); 0 disables it.
    dropout : float, default=0.2
        Dropout of the encoder and discriminator (Appendix B).
    sigma_y_max : float or None, default=None
        Upper bound of the noise scale ``sigma_y(x)`` of Eq. 8 (None: unbounded, as in the
        paper). Unbounded, the encoder learns to make the relaxed ``y`` one-hot, as the
        prior's ``y`` is, by raising ``sigma_y`` to 10^2-10^11 against logits spread by 3-7
        (``history_``'s ``sigma_y`` and ``mu_y_spread``). A bound of 1 steadied the digits
        (ACC 0.728 / 0.781 / 0.799 for seeds 0, 1, 2 against 0.712 / 0.871 / 0.569) but
        lowered MNIST-10k (0.581 / 0.517 for seeds 0, 1 against 0.631 / 0.602 / 0.678), so
        the default keeps the paper's unbounded noise (``docs/amm.md``; these fits were
        without the consistency term). Unused with ``y_sampling="hard"``.
    prior : {"learned", "fixed"}, default="learned"
        ``"learned"``: the component means come from the prior network of Table 4, a small
        perceptron of the one-hot y initialised N(0, 0.02) (so the means start near 0),
        trained by reparameterisation (Eq. 12); ``"fixed"``: means drawn once from N(0, I).
        The variances are 1 in both (Table 4's ``sigma = ExpN(zeros)``).
    cluster_weights : {"auto", "uniform", "kmeans"} or array-like of shape (n_clusters,), \
            default="auto"
        The mixture weights ``p(y)`` the game matches the encoder's ``q(y)`` to; the game
        pulls the clusters' sizes towards them. ``"uniform"``: the paper's ``p(y)`` (Table 4).
        ``"kmeans"``: the cluster proportions of k-means on a 50-d PCA of the data, fixed for
        the fit (ours, for data whose clusters differ in size). ``"auto"``: uniform for images;
        for flat features (tables), k-means proportions when their sizes differ beyond
        chance (a chi-square test of equal sizes rejected at the 1 % level), else uniform: on
        breast cancer (classes of 212 and 357 rows) uniform weights held every cluster near
        half the rows, while on wine (near-equal classes) they did better than k-means
        proportions (``docs/amm.md``). An array gives the weights (positive,
        normalised to sum to 1). In semi-supervised mode the labeled rows' class frequencies
        set ``p(y)`` instead.
    init : {"random", "kmeans"}, default="random"
        ``"random"``: the game starts from the random networks, as in the paper.
        ``"kmeans"``: before the game, the encoder and decoder are trained for one epoch on
        ``CE(mu_y(x), c) + reconstruction_weight * reconstruction`` with ``c`` the k-means
        clusters of a 50-d PCA of the data (ours; GAN-EM starts the same way). It sped up
        the first epochs on MNIST-10k but did not improve the final accuracy, and lowered it
        on digits (see ``docs/methods.md``).
    consistency_weight : float, default=1.0
        Weight of the consistency term on images (ours): the cross-entropy between the
        encoder's cluster posterior ``softmax(mu_y(x))`` of each real image, held fixed, and
        that of a transformed copy ``T(x)`` (``skganem._losses.consistency_loss``), so that an
        image and its rotated and shifted copy fall in one component. Benchmark suite (seeds
        0, 1, 2, 2 threads): MNIST-10k 0.710 / 0.784 / 0.743 with it against 0.622 / 0.526 /
        0.603 without, the digits images 0.913 / 0.932 / 0.933 against 0.792 / 0.777 / 0.800,
        for about 10 % more time per update (``docs/amm.md``). 0 disables it; it has no effect
        without an augmentation (tables, perceptrons).
    augmentation : {"auto", "affine", "wide-affine"} or None, default="auto"
        The transform ``T`` of the consistency term (``augmentation_`` holds the choice):
        each image rotated and shifted by its own random amount, up to 25 degrees and 10 % of
        its height and width (``"wide-affine"``) or up to 10 degrees and 10 % (``"affine"``,
        DEC-DA's augmentation, which ``GANEMClustering``'s ``e_augmentation`` and ``KMGAN``'s
        pretraining use). ``"auto"``: ``"wide-affine"`` for conv nets on images, None (no
        consistency term) otherwise. Refused on flat features.
    y_sampling : {"relaxed", "hard"}, default="relaxed"
        How the inference side draws the ``y`` the critic sees. ``"relaxed"``: the paper's
        reparameterised categorical, ``y = softmax(mu_y + sigma_y * eps)`` (Eq. 8-9).
        ``"hard"`` (ours): a one-hot draw from ``softmax(mu_y)`` whose gradient is that of
        the probabilities (straight-through), so that the critic sees the encoder's cluster
        where Eq. 8-9's noise, raised by the encoder until it makes ``y`` one-hot (see
        ``sigma_y_max``), hides it; ``sigma_y`` and ``sigma_y_max`` are then unused. On
        MNIST-10k images it gave 0.897 / 0.805 / 0.722 (seeds 0 / 1 / 2, one thread per fit)
        but 0.675 / 0.678 / 0.677 in the benchmark suite (2 threads), against
        0.710 / 0.784 / 0.743 with ``"relaxed"`` there: no better on average and more
        variable, so the paper's draw stays the default (``docs/amm.md``).
    predict_method : {"auto", "mixture", "encoder", "bayes"}, default="auto"
        ``"auto"``: ``"mixture"``, or ``"encoder"`` with ``semi_supervised=True`` (SAMM's
        encoder learns the given labels, and its figures were measured with the encoder).
        ``"encoder"``: ``predict_proba = softmax(mu_y(x))`` without sampling noise.
        ``"bayes"``: the Bayes classifier on the embedding, ``p(y=k | z)`` with
        ``z = transform(x)`` (Eq. 19). ``"mixture"`` (ours): the same Bayes classifier on
        a Gaussian mixture with full covariances fitted by EM to the training rows' codes
        ``transform(X)`` (EM started from the encoder's clusters and from
        ``mixture_n_init`` k-means++ partitions of the codes), instead of the prior's
        unit-variance components, which the inferred codes need not match (30 % of the
        codes' mean variance is added to each covariance's diagonal). The mixture is
        fitted at the end of every fit, so the method can be switched after fitting (a
        checkpoint saved during training predicts with the encoder until then). On
        the codes of the same fits (one thread per fit), EM started from the encoder's
        clusters alone, it gave MNIST-10k 0.835 / 0.793 / 0.794 (seeds 0 / 1 / 2) against
        the encoder's 0.708 / 0.780 / 0.695, and the 8x8 digits 0.937 / 0.951 / 0.953
        against 0.922 / 0.939 / 0.931; in the benchmark suite (2 threads), with the default
        ``mixture_n_init``, MNIST-10k 0.852 / 0.820 / 0.843 against the encoder's 0.710 /
        0.784 / 0.743 (``docs/amm.md``).
    mixture_n_init : int, default=10
        Starts of the EM of ``predict_method="mixture"`` besides the encoder's clusters:
        each from k-means++ and Lloyd's iterations on the codes; the mixture with the
        largest mean log-likelihood of the training codes is kept, as
        ``GaussianMixture(n_init=...)`` keeps its best start. 0 starts from the encoder's
        clusters only. EM from the encoder's clusters can stop in a partition of lower
        likelihood: in the benchmark suite (MNIST-10k, 2 threads, the same training) the
        default gave 0.852 / 0.820 / 0.843 (seeds 0 / 1 / 2) against 0.721 / 0.820 / 0.823
        from the encoder's clusters alone, the 8x8 digits 0.953 / 0.952 / 0.950 against
        0.968 / 0.952 / 0.950 (``docs/amm.md``).
    semi_supervised : bool, default=False
        If True, ``fit(X, y)`` uses labels in ``[0, n_clusters)`` with -1 for unlabeled rows
        (SAMM). If False, ``y`` is ignored.
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
        computes it natively; ``torch.compile`` of every network but the critic (the
        gradient penalty differentiates the critic's gradients, which a compiled module's
        backward pass does not allow).

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
    cluster_means_ : ndarray of shape (n_clusters, n_components)
        Means of the mixture components p(z|y=k).
    cluster_variances_ : ndarray of shape (n_clusters, n_components)
        Diagonal variances of the components (1, as in Table 4).
    augmentation_ : str or None
        The transform of the consistency term (``augmentation="auto"`` resolved).
    cluster_weights_ : ndarray of shape (n_clusters,)
        p(y), the weights the game matched: uniform, k-means proportions or the given
        ``cluster_weights``, or the labeled class frequencies in semi-supervised mode.
    n_iter_, converged_, restart_scores_, history_, image_shape_, deskew_, scaler_, device_, engine_, n_features_in_
        As in :class:`GANEMClustering`; ``history_`` holds ``loss_d`` and ``loss_g`` (and
        ``loss_cycle``, ``loss_rec``, ``loss_consistency`` when those terms are on),
        ``cluster_sizes``, ``label_change`` and the game's diagnostics, measured on 256 fixed
        rows after each epoch: ``grad_ratio_zx`` (the critic's gradient norm with respect to
        z over that with respect to x), ``z_norm_inferred`` and ``z_norm_prior`` (mean norms
        of inferred and prior codes), ``z_own_component`` (share of codes nearest their own
        component's mean), ``sigma_y`` and ``mu_y_spread`` (the noise of Eq. 8 against the
        spread of the logits; the noise is unused with ``y_sampling="hard"``);
        ``docs/amm.md`` explains how to read them.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skganem import AMMClustering
    >>> X, _ = make_blobs(n_samples=200, centers=3, random_state=0)
    >>> est = AMMClustering(n_clusters=3, n_components=4, hidden_dims=(32,), n_iter=2,
    ...                     random_state=0).fit(X)
    >>> est.inverse_transform(est.transform(X[:5])).shape
    (5, 2)
    """

    _parameter_constraints: dict = {
        **BaseGANClustering._parameter_constraints,
        "n_iter": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "gp_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "cycle_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "reconstruction_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "sigma_y_max": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "prior": [StrOptions({"learned", "fixed"})],
        "predict_method": [StrOptions({"auto", "encoder", "bayes", "mixture"})],
        "mixture_n_init": [Interval(numbers.Integral, 0, None, closed="left")],
        "semi_supervised": ["boolean"],
        "init": [StrOptions({"random", "kmeans"})],
        "cluster_weights": [StrOptions({"auto", "uniform", "kmeans"}), "array-like"],
        "consistency_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "augmentation": [StrOptions({"auto", *AUGMENTATIONS}), None],
        "y_sampling": [StrOptions({"relaxed", "hard"})],
    }

    def __init__(self, n_clusters=8, *, n_components=64, image_shape=None, deskew="auto",
                 architecture="auto",
                 hidden_dims=(256, 256), conv_channels=(32, 64), batch_size=64, n_iter="auto",
                 tol=None, n_iter_no_change=2, n_init="auto",
                 lr=1e-3, gp_weight=10.0, cycle_weight=1.0, reconstruction_weight=1.0,
                 dropout=0.2, sigma_y_max=None, prior="learned", cluster_weights="auto",
                 init="random", consistency_weight=1.0, augmentation="auto",
                 y_sampling="relaxed", predict_method="auto", mixture_n_init=10,
                 semi_supervised=False,
                 warm_start=False, checkpoint_path=None, checkpoint_every=1, device="auto",
                 precision="auto", compile=False, random_state=None, verbose=0):
        super().__init__(n_clusters, n_components=n_components, image_shape=image_shape,
                         deskew=deskew,
                         architecture=architecture, hidden_dims=hidden_dims,
                         conv_channels=conv_channels, batch_size=batch_size, n_iter=n_iter,
                         tol=tol, n_iter_no_change=n_iter_no_change, n_init=n_init,
                         warm_start=warm_start, checkpoint_path=checkpoint_path,
                         checkpoint_every=checkpoint_every, device=device,
                         precision=precision, compile=compile, random_state=random_state,
                         verbose=verbose)
        self.lr = lr
        self.gp_weight = gp_weight
        self.cycle_weight = cycle_weight
        self.reconstruction_weight = reconstruction_weight
        self.dropout = dropout
        self.sigma_y_max = sigma_y_max
        self.prior = prior
        self.cluster_weights = cluster_weights
        self.init = init
        self.predict_method = predict_method
        self.mixture_n_init = mixture_n_init
        self.semi_supervised = semi_supervised
        self.consistency_weight = consistency_weight
        self.augmentation = augmentation
        self.y_sampling = y_sampling

    def _max_iter(self, n_samples):
        if self.n_iter != "auto":
            return self.n_iter
        per_epoch = math.ceil(n_samples / self.batch_size)
        return int(min(AUTO_MAX_EPOCHS, max(10, math.ceil(AUTO_UPDATES / per_epoch))))

    def _make_engine(self, sample_shape, spec: NetSpec, device):
        image_shape = getattr(self, "image_shape_", None)  # set by fit's validation of X
        self.augmentation_ = augmentation = resolve_augmentation(
            "augmentation", self.augmentation, spec.kind, image_shape, auto="wide-affine")
        config = AMMConfig(
            y_sampling=self.y_sampling,
            consistency_weight=self.consistency_weight if augmentation else 0.0,
            augmentation=augmentation, image_shape=image_shape,
            n_clusters=self.n_clusters, n_components=self.n_components, spec=spec,
            batch_size=self.batch_size, lr=self.lr, gp_weight=self.gp_weight,
            dropout=self.dropout, sigma_y_max=self.sigma_y_max, prior=self.prior,
            cycle_weight=self.cycle_weight,
            reconstruction_weight=self.reconstruction_weight,
            mixture_n_init=self.mixture_n_init, paper_nets=self.architecture == "paper")
        return AMMEngine(config, sample_shape, device)

    def _net_spec(self, image_shape):
        if self.architecture != "paper":
            return super()._net_spec(image_shape)
        if image_shape is None or min(image_shape[1:]) < PAPER_MIN_SIZE:
            got = ("flat features" if image_shape is None
                   else f"images of {image_shape[1]}x{image_shape[2]} pixels")
            raise ValueError(
                "architecture='paper' builds the paper's MNIST networks (Tables 3-6), which "
                f"need images of at least {PAPER_MIN_SIZE}x{PAPER_MIN_SIZE} pixels, got {got}: "
                "use architecture='conv' (or 'mlp' for tables).")
        # conv nets for precision and batch normalisation; the widths are the tables'
        return NetSpec("conv", (), ())

    def _uses_labels(self):
        return self.semi_supervised

    def _check_param_values(self):
        super()._check_param_values()
        if isinstance(self.cluster_weights, str):
            return
        w = np.asarray(self.cluster_weights, dtype=float)
        if w.shape != (self.n_clusters,) or not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ValueError(
                f"cluster_weights must be 'auto', 'uniform', 'kmeans' or {self.n_clusters} positive "
                f"weights (one per cluster), got {self.cluster_weights!r}.")

    def _init_state_kwargs(self, X, data, labels, rng):
        kwargs = {}
        # a resumed fit keeps its networks and p(y) (``log_prior`` lives in the engine)
        if not (self.warm_start and hasattr(self, "engine_")):
            named = self.cluster_weights if isinstance(self.cluster_weights, str) else None
            if named == "auto" and self.image_shape_ is not None:
                named = "uniform"
            if self.init == "kmeans" or named in ("kmeans", "auto"):
                # SAMM: labeled rows start in their given component
                start = kmeans_pca_labels(ScaledView(X, self._input_map), self.n_clusters, rng,
                                          given=labels)
                if self.init == "kmeans":
                    kwargs["init_labels"] = start
                if named == "auto":
                    named = "kmeans" if self._unequal(start) else "uniform"
                if named == "kmeans":
                    kwargs["class_prior"] = self._proportions(start)
            if named is None:
                w = np.asarray(self.cluster_weights, dtype=float)
                kwargs["class_prior"] = w / w.sum()
        if labels is None:
            return kwargs
        # p(y) from labeled frequencies
        return {**kwargs, "labels": labels, "class_prior": self._proportions(labels[labels >= 0])}

    def _unequal(self, labels):
        """Whether the cluster sizes of ``labels`` differ beyond chance: a chi-square test of
        equal sizes rejected at level ``AUTO_WEIGHTS_LEVEL``."""
        counts = np.bincount(labels, minlength=self.n_clusters)
        return bool(chisquare(counts).pvalue < AUTO_WEIGHTS_LEVEL)

    def _proportions(self, labels):
        """Share of ``labels`` in each cluster, every cluster kept above zero."""
        counts = np.bincount(labels, minlength=self.n_clusters).astype(float) + 1e-3
        return counts / counts.sum()

    def _proba_fn(self):
        method = self.predict_method
        if method == "auto":
            method = "encoder" if self.semi_supervised else "mixture"
        if method == "bayes":
            return self.engine_.predict_proba_bayes
        if method == "mixture":
            return self.engine_.predict_proba_mixture
        return self.engine_.predict_proba

    def _set_method_attributes(self):
        prior = self.engine_.prior
        self.cluster_means_ = prior.component_means().detach().cpu().double().numpy()
        self.cluster_variances_ = prior.logvar.detach().exp().cpu().double().numpy()
        self.cluster_weights_ = self.engine_.cluster_prior().double().numpy()

    def inverse_transform(self, X):
        """Decode embeddings back to the data space: G_x(y, z) with y the Bayes cluster of z.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Embeddings, e.g. from :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Reconstructions in the units of the training data.
        """
        check_is_fitted(self, "engine_")
        Z = check_array(X, dtype=np.float32, input_name="X")
        if Z.shape[1] != self.n_components:
            raise ValueError(f"X has {Z.shape[1]} features, but inverse_transform expects "
                             f"n_components={self.n_components}.")
        engine = self.engine_
        engine.eval()
        out = []
        with torch.inference_mode():
            for sl in batch_slices(Z.shape[0], INFERENCE_BATCH_SIZE):
                z = torch.from_numpy(Z[sl]).to(engine.device)
                out.append(engine.decode(z).reshape(z.shape[0], -1).float().cpu().numpy())
        return self.scaler_.inverse_transform(np.concatenate(out))
