"""GANEMClustering: the GAN-EM method behind a scikit-learn estimator."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ._augment import AUGMENTATIONS, resolve_augmentation
from ._base import BaseGANClustering
from ._engines.ganem import GANEMConfig, GANEMEngine
from ._init import ScaledView, kmeans_pca_labels
from ._networks import NetSpec


#: The values of the ``"auto"`` schedule parameters, by network kind. Perceptrons (flat rows,
#: tables) keep the schedule their tables were measured with; conv nets (images) train in
#: larger batches with larger learning rates and shorter steps, which on MNIST-10k took about
#: half the computation (``docs/ganem.md``).
SCHEDULES = {
    "mlp": dict(batch_size=64, n_iter=18, m_epochs=5.0, min_m_steps=500, e_steps=300,
                lr_d=2e-4, lr_g=2e-4, lr_e=2e-4),
    "conv": dict(batch_size=128, n_iter=22, m_epochs=3.0, min_m_steps=200, e_steps=100,
                 lr_d=4e-4, lr_g=4e-4, lr_e=1e-3),
}


#: With ``min_m_steps="auto"``, the floor on G/D updates per M-step asks for at most this many
#: passes over the data: on the 178-row wine table the perceptrons' floor of 500 updates
#: (180 passes) took ACC from the k-means start's 0.972 to 0.916-0.938 (seeds 0-2), and 100
#: updates gave 0.944-0.966 (``docs/ganem.md``).
MIN_M_STEPS_MAX_PASSES = 40


class GANEMClustering(BaseGANClustering):
    """Clustering with GAN-EM: a conditional GAN in the M-step and an E-net in the E-step.

    Implements Zhao et al., "GAN-EM: GAN based EM learning framework" (Algorithm 1).
    Each EM iteration first sets the mixture weights ``phi_i = N_i / N`` from the soft
    assignments, then trains a conditional generator ``G(z, c)`` and a discriminator with
    ``K`` class units and one real/fake unit for ``m_epochs`` passes over the data, with the
    discriminator's real-data term weighted by the assignments ``w`` (Eq. 2) and the
    generator loss of Eq. 1 (or the BCE form of the authors' code). The E-step then trains the
    E-net on generated samples (Eq. 5), with their classes balanced within each batch as in
    the authors' code (``e_classes``), and sets ``w = E(x_real)``; a cluster left (nearly)
    empty is re-seeded with half of the largest one, as ``KMeans`` re-seeds empty clusters.
    Predictions are the E-net's softmax; :meth:`transform` returns the E-net's layer ``r`` of
    ``n_components`` units (Sec. 5.4).

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters ``K``.
    n_components : int, default=32
        Width of the E-net's layer ``r``: the dimension of :meth:`transform`.
    image_shape : tuple of int, default=None
        ``(height, width)`` or ``(channels, height, width)`` of each row of X; selects
        convolutional networks. None for flat features (perceptrons), unless X itself is an
        image array of shape ``(n, [channels,] height, width)``.
    deskew : bool or "auto", default="auto"
        Shear each image so that the principal axis of its ink is vertical before the
        networks see it (moment-based deskewing, as for deskewed MNIST; ``skganem._deskew``),
        in ``fit`` and in every later call; :meth:`sample` then returns deskewed images.
        ``"auto"``: on for single-channel images with sides of at least 16 pixels, off for
        smaller or colour images and flat features; ``True`` needs images. Handwriting
        varies in slant, and without deskewing GAN-EM can take slant for a class: on
        MNIST-10k seed 2 split the fours and nines into a leaning-left and a leaning-right
        cluster. Deskewed, seeds 0, 1, 2 gave 0.954 / 0.956 / 0.950 against 0.936 / 0.921 /
        0.874; on the 8x8 digits it gave 0.852 / 0.862 / 0.834 against 0.938 / 0.890 /
        0.930, hence the size bound (``docs/ganem.md``, "Deskewing").
    architecture : {"auto", "mlp", "conv", "paper"}, default="auto"
        ``"auto"``: conv nets for images with sides of at least ``2 ** len(conv_channels)``
        pixels (4 by default), perceptrons otherwise. ``"paper"``: the networks of
        the paper's Table 4 (conv 64-128-256, FC 1024; G: FC 128x7x7, deconv 64, deconv 1).
        They are slow on a CPU (about 225 s per 60k-image epoch on 2 cores); use them on a GPU.
    hidden_dims : tuple of int, default=(256, 256)
        Hidden widths of the perceptrons (for conv nets: the FC layers after the convolutions).
    conv_channels : tuple of int, default=(32, 64)
        Channels of the convolutional layers (``architecture="conv"``).
    noise_dim : int, default=62
        Dimension of the generator's noise ``z ~ U[0, 1)`` (as in the paper and its code).
    batch_size : int or "auto", default="auto"
        Mini-batch size of the M-step (real and generated batches), at least 2 (batch
        normalisation). ``"auto"``: 128 for conv nets, 64 for perceptrons. With the default
        conv nets in bfloat16 on 2 CPU cores, a G/D update cost about 0.4 ms per row in
        batches of 128 and 0.6 ms in batches of 64.
    n_iter : int or "auto", default="auto"
        Number of EM iterations. ``"auto"``: 22 for conv nets, 18 for perceptrons. Measured
        on 10,000 MNIST images with the conv defaults (seeds 0, 1, 2, ``docs/ganem.md``): ACC
        0.50-0.53 from the k-means start, 0.47-0.53 after 1 iteration, 0.76-0.83 after 14 and
        0.825 / 0.833 / 0.834 after 22. Each iteration there is an M-step of 235 G/D updates
        and an E-step of 100 E-net updates.
    tol : float or None, default=None
        Convergence tolerance: training stops once at most this share of the training rows
        changed cluster between consecutive iterations, ``n_iter_no_change`` times in a row
        (``n_iter`` is then the maximum), and a fit that reaches ``n_iter`` without
        converging raises a ``ConvergenceWarning``. None (the default for GAN-EM) runs all
        ``n_iter`` iterations: on 10,000 MNIST images 5-9 % of the rows still changed
        cluster in each of iterations 10-14 while ACC kept rising (2 seeds, ``history_``'s
        ``label_change``), so a tolerance would either never stop or stop too early.
    n_iter_no_change : int, default=2
        Consecutive iterations within ``tol`` that count as converged.
    n_init : int or "auto", default="auto"
        Training runs, each from new networks and its own random stream; the fit keeps the
        best run, runs with an empty or near-empty cluster ranked last. On images the best
        run is the one whose E-net is most confident: the largest mean over the training
        rows of each row's largest :meth:`predict_proba`; on tables the one whose clusters
        are best separated in its own embedding: the silhouette of its labels on
        :meth:`transform` (on at most 2,000 evenly spaced rows). The scores are in
        ``restart_scores_``. ``"auto"``: 3 for data of at most 5,000 rows, tables and
        images alike, where a run takes seconds to a few minutes, and 1 for larger data; 1
        whenever ``checkpoint_path`` is set (a checkpoint holds one run). Over twelve
        single runs on MNIST-10k images as given (``deskew=False``; 0.852-0.952, mean 0.912) the most confident of two
        averaged 0.928 and of three 0.935, for 1.75 and 2.6 times the time of one run on 2
        CPU cores (``docs/ganem.md``, "Restarts"). Measured on small tables
        through ``StandardScaler`` (``docs/benchmarks.md``), choosing the best of three runs
        by the silhouette raised the mean ACC over single runs on wine and breast cancer for
        all three estimators and changed it by at most 0.002 on the 64-column digits table;
        the silhouette on the input instead lowered it there by up to 0.044. On the 1,797
        digits images (seeds 0, 1, 2, 2 threads) three runs gave 0.938 / 0.890 / 0.930 in 137-139 s
        against 0.828 / 0.875 / 0.879 for one run (91-118 s). On a CPU with two or more torch
        threads the runs go side by side to the fitting process and worker processes, up to
        two processes per thread, with ``max(1, threads // processes)`` threads each; on a
        GPU, with one thread, with ``compile=True`` or for memory-mapped data one after
        another (``docs/scaling.md``).
    m_epochs : float or "auto", default="auto"
        Passes over the data per M-step. ``"auto"``: 3 for conv nets, 5 (the paper's
        ``p = 5``) for perceptrons.
    min_m_steps : int or "auto", default="auto"
        Lower bound on the G/D updates of one M-step, so that small data sets still train
        the GAN (our addition: 5 passes over 1,797 digits are only 140 updates).
        ``"auto"``: 200 for conv nets, 500 for perceptrons, but never more than 40 passes
        over the data: more passes over a small table let the GAN drift from the k-means
        start (wine, 178 rows: ACC 0.916-0.938 with 500 updates, 180 passes, against
        0.944-0.966 with 100). ``schedule_`` shows the floor a fit used.
    e_steps : int or "auto", default="auto"
        E-net updates per E-step (the paper's ``q``; it uses 1000). The E-net keeps its
        weights from one E-step to the next. ``"auto"``: 100 for conv nets, 300 for
        perceptrons.
    e_batch_size : int, default=200
        Generated samples per E-net update (Appendix B: 200). At least 2.
    lr_d, lr_g, lr_e : float or "auto", default="auto"
        Learning rates of D, G and the E-net, each multiplied by ``lr_decay ** iteration``.
        ``"auto"``: 4e-4, 4e-4 and 1e-3 for conv nets; 2e-4 each (the authors' code) for
        perceptrons. The conv schedule (larger batches and rates, shorter steps) took about
        half the computation on MNIST-10k; on the breast-cancer table it gave 0.671 / 0.930 /
        0.814 (seeds 0-2) against 0.882 / 0.872 / 0.931 with the perceptron schedule, hence
        two schedules (``docs/ganem.md``).
    lr_decay : float, default=0.98
        Per-iteration learning-rate decay (the paper's "decay rate").
    optimizer : {"adam", "rmsprop"}, default="adam"
        Adam (beta1 = 0.5, as in the authors' code) or RMSprop (as in the paper's text).
    e_classes : {"balanced", "phi"}, default="balanced"
        Classes of the generated samples the E-net learns from. ``"balanced"``: every cluster
        equally often within each E-net batch, as the authors' code does. ``"phi"``:
        ``c ~ phi``, as Eq. 5 is written; then a cluster that shrinks gets fewer samples, is
        learned worse and shrinks further. Measured with ``"phi"`` on flat data: digits as
        ``(1797, 64)`` rows ended with 3 of 10 clusters empty (seed 2, ACC 0.226, against
        0.662 balanced) and the breast-cancer table in one cluster (ACC 0.627, against 0.896
        balanced; ``docs/ganem.md``).
    generator_loss : {"bce", "kl"}, default="bce"
        ``"kl"``: Eq. 1, ``-1/2 E exp(logit_c)``. ``"bce"``: the authors' code's
        binary cross-entropy towards ``[one_hot(c), real]``.
    e_dropout : float, default=0.3
        Dropout rate in the E-net's hidden layers, in ``[0, 1)`` (ours: neither the paper nor
        the authors' code uses dropout; 0 switches it off). The E-net learns from generated
        samples and labels real ones; the dropout keeps it from fitting what only the
        generated samples have. Measured on the digits (one EM iteration, perceptrons): ACC
        0.54 with 0.3 against 0.45 without. On 10,000 MNIST images with conv nets and
        ``e_augmentation=None`` (seeds 0, 1, 2) 0 gave 0.835 / 0.829 / 0.850 against
        0.825 / 0.833 / 0.834 with 0.3, within the spread between runs (``docs/ganem.md``).
    e_augmentation : {"auto", "affine", "wide-affine"} or None, default="auto"
        ``"auto"``: ``"affine"`` when the networks are conv nets on images, else None
        (``e_augmentation_`` holds the choice). ``"affine"``: every generated image the E-net
        learns from is first rotated by up to 10 degrees and shifted by up to 10 % of its size
        (DEC-DA's augmentation, as ``KMGAN``'s pretraining uses it), so that the E-net's
        classes do not hinge on slant or position (ours, not the paper's). Needs images whose
        class survives small rotations and shifts, such as handwritten digits; pass None for
        images where it does not; ``"wide-affine"`` rotates by up to 25 degrees. Benchmark
        suite (seeds 0, 1, 2, 2 threads), images as given (``deskew=False``): on 10,000
        MNIST images ACC 0.936 / 0.921 / 0.874,
        and 0.931 / 0.832 / 0.948 on another floating-point path where None gave
        0.807 / 0.839 / 0.839; on the 8x8 digits (one run, ``n_init=1``) 0.828 / 0.875 /
        0.879 against 0.826 / 0.829 / 0.843 with None (``docs/ganem.md``).
    clip_value : float or None, default=None
        Bound of the generator's weight clipping (Sec. 4.4); None disables it (as the
        authors' code does).
    init : {"kmeans", "uniform"}, default="kmeans"
        Initial assignments ``w``: uniform as in Algorithm 1, or one-hot from k-means on a
        50-component PCA of the data.
    semi_supervised : bool, default=False
        If True, ``fit(X, y)`` uses the labels in ``y`` (``-1`` = unlabeled): at the end of
        each E-step the E-net is trained on the labeled rows until its error there is below
        ``label_tol`` (Sec. 5.3). Cluster ``k`` then stands for label ``k``. If False, ``y``
        is ignored.
    label_tol : float, default=0.05
        Error on the labeled rows at which the semi-supervised E-net training stops.
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
    precision : {"auto", "bf16", "fp32"}, default="auto"
        Arithmetic of the networks' forward and backward passes. ``"bf16"``: bfloat16
        autocast (weights, optimiser state, losses and assignments stay float32) with
        channels-last convolutions. ``"auto"``: bfloat16 for convolutional networks on a
        device that computes it natively (CUDA GPUs from Ampere on, CPUs with AVX-512 BF16 or
        AMX), float32 otherwise. ``"fp32"``: float32 throughout.
    compile : bool, default=False
        Compile the networks' forward passes with ``torch.compile`` before training. It
        costs compile time at the start of the fit and pays off, if at all, on long fits on a
        GPU (up to 1.08x per training update on an H200); on 2 CPU cores training ran
        0.23-1.04x as fast as without it. It needs a working ``torch.compile`` set-up (a C++
        compiler on CPUs) and raises ``torch._dynamo``'s recompile limit to 64 for the
        process, since each network runs in several modes.
    random_state : int, RandomState instance or None, default=None
        Seed of the initialisation, the mini-batches and the noise. An int gives the same
        labels on every CPU run. Torch's global RNG is left as it was.
    verbose : int, default=0
        1 shows a progress bar over EM iterations with the current losses.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training row (from a final inference pass).
    cluster_weights_ : ndarray of shape (n_clusters,)
        Mixture weights ``phi`` of the last M-step.
    n_iter_ : int
        EM iterations run.
    schedule_ : dict
        The schedule the fit used: ``batch_size``, ``n_iter``, ``m_epochs``, ``min_m_steps``,
        ``e_steps``, ``lr_d``, ``lr_g``, ``lr_e`` with every ``"auto"`` resolved.
    e_augmentation_ : str or None
        The augmentation of the E-net's batches (``e_augmentation="auto"`` resolved).
    converged_ : bool
        Whether training stopped on ``tol`` before ``n_iter`` iterations.
    restart_scores_ : ndarray of shape (n_init,)
        Score of each of the ``n_init`` runs: on images the mean largest cluster
        probability, on tables the silhouette of the clusters on the run's embedding; the
        kept run has the largest among runs without empty or near-empty clusters. ``[nan]``
        for a single run, which is not scored.
    history_ : list of dict
        Per iteration: ``loss_d``, ``loss_g``, ``loss_e`` (means), ``seconds``,
        ``label_change`` (share of rows whose cluster changed in the iteration),
        ``cluster_sizes`` (rows per cluster after the E-step), ``phi`` (the M-step's mixture
        weights), ``reseeded`` (clusters re-seeded after the E-step), and in semi-supervised
        mode ``label_error``.
    image_shape_ : tuple of int or None
        Resolved ``(channels, height, width)``, or None for flat features.
    deskew_ : bool
        Whether the images are deskewed (``deskew`` resolved).
    scaler_ : RangeScaler
        The fitted rescaling of the data to the generator's range ``[-1, 1]``.
    device_ : str
        Device the networks live on.
    engine_ : GANEMEngine
        The trained networks (``engine_.G``, ``engine_.D``, ``engine_.E``).
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : ndarray of str
        Names of the features seen in fit, when X has string column names.

    See Also
    --------
    KMGAN : k-means in a GAN discriminator's feature space.
    AMMClustering : adversarially learned mixture model.
    sklearn.mixture.GaussianMixture : EM with Gaussian components.

    Notes
    -----
    Choices where the paper is silent or differs from its authors' code are documented in
    ``docs/methods.md``: the Adam optimiser and BCE generator loss of the authors' code, the
    k-means initialisation, persistent optimisers with decayed learning rates, and lighter
    default networks for CPUs.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skganem import GANEMClustering
    >>> X, _ = make_blobs(n_samples=200, centers=3, random_state=0)
    >>> est = GANEMClustering(n_clusters=3, hidden_dims=(32,), n_iter=2, e_steps=20,
    ...                       random_state=0).fit(X)
    >>> est.predict_proba(X[:2]).shape
    (2, 3)
    """

    #: Image sets of up to 5,000 rows get 3 runs too (``n_init="auto"``), ranked by the
    #: E-net's mean confidence; on larger sets two runs took 1.75 times one run's time on 2
    #: CPU cores (``docs/ganem.md``, "Restarts"), so they get one.
    _auto_restart_images = True
    _schedules = SCHEDULES

    _parameter_constraints: dict = {
        **BaseGANClustering._parameter_constraints,
        "noise_dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 2, None, closed="left"), StrOptions({"auto"})],
        "n_iter": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "m_epochs": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "min_m_steps": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "e_steps": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "e_batch_size": [Interval(numbers.Integral, 2, None, closed="left")],
        "lr_d": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "lr_g": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "lr_e": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "lr_decay": [Interval(numbers.Real, 0, 1, closed="right")],
        "optimizer": [StrOptions({"adam", "rmsprop"})],
        "e_classes": [StrOptions({"balanced", "phi"})],
        "generator_loss": [StrOptions({"bce", "kl"})],
        "e_dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "e_augmentation": [StrOptions({"auto", *AUGMENTATIONS}), None],
        "clip_value": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "init": [StrOptions({"kmeans", "uniform"})],
        "semi_supervised": ["boolean"],
        "label_tol": [Interval(numbers.Real, 0, 1, closed="both")],
    }

    def __init__(self, n_clusters=8, *, n_components=32, image_shape=None, deskew="auto",
                 architecture="auto",
                 hidden_dims=(256, 256), conv_channels=(32, 64), noise_dim=62,
                 batch_size="auto", n_iter="auto", tol=None, n_iter_no_change=2, n_init="auto",
                 m_epochs="auto", min_m_steps="auto", e_steps="auto", e_batch_size=200,
                 lr_d="auto", lr_g="auto", lr_e="auto", lr_decay=0.98, optimizer="adam",
                 e_classes="balanced", generator_loss="bce", e_dropout=0.3, e_augmentation="auto",
                 clip_value=None,
                 init="kmeans", semi_supervised=False, label_tol=0.05,
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
        self.noise_dim = noise_dim
        self.m_epochs = m_epochs
        self.min_m_steps = min_m_steps
        self.e_steps = e_steps
        self.e_batch_size = e_batch_size
        self.lr_d = lr_d
        self.lr_g = lr_g
        self.lr_e = lr_e
        self.lr_decay = lr_decay
        self.optimizer = optimizer
        self.e_classes = e_classes
        self.generator_loss = generator_loss
        self.e_dropout = e_dropout
        self.e_augmentation = e_augmentation
        self.clip_value = clip_value
        self.init = init
        self.semi_supervised = semi_supervised
        self.label_tol = label_tol

    def _restart_criterion(self) -> str:
        # Images: the E-net's mean confidence, which ranked twelve runs each on MNIST-10k and
        # on the digits at least as well as the silhouette, at a cost linear in the rows
        # (docs/ganem.md, "Restarts"); tables: the silhouette, measured on them.
        return "confidence" if self.image_shape_ is not None else "silhouette"

    def _make_engine(self, sample_shape, spec: NetSpec, device):
        self.schedule_ = sched = self._resolve_schedule(spec.kind)
        image_shape = getattr(self, "image_shape_", None)  # set by fit's validation of X
        self.e_augmentation_ = e_augmentation = resolve_augmentation(
            "e_augmentation", self.e_augmentation, spec.kind, image_shape)
        config = GANEMConfig(
            n_clusters=self.n_clusters, n_components=self.n_components, spec=spec,
            noise_dim=self.noise_dim, batch_size=sched["batch_size"],
            m_epochs=sched["m_epochs"], min_m_steps=sched["min_m_steps"],
            min_m_steps_max_passes=(MIN_M_STEPS_MAX_PASSES if self.min_m_steps == "auto"
                                    else None),
            e_steps=sched["e_steps"], e_batch_size=self.e_batch_size, lr_d=sched["lr_d"],
            lr_g=sched["lr_g"], lr_e=sched["lr_e"], lr_decay=self.lr_decay,
            optimizer=self.optimizer,
            e_classes=self.e_classes, generator_loss=self.generator_loss,
            e_dropout=self.e_dropout, e_augmentation=e_augmentation,
            image_shape=image_shape, clip_value=self.clip_value,
            label_tol=self.label_tol)
        return GANEMEngine(config, sample_shape, device)

    def _uses_labels(self):
        return self.semi_supervised

    def _init_state_kwargs(self, X, data, labels, rng):
        w_init = None
        resuming = self.warm_start and hasattr(self, "engine_")
        if self.init == "kmeans" and not resuming:  # a resumed fit starts from w = E(x)
            init = kmeans_pca_labels(ScaledView(X, self._input_map), self.n_clusters, rng,
                                     given=labels)
            w_init = np.eye(self.n_clusters, dtype=np.float32)[init]
        return {"w_init": w_init, "labels": labels}

    def _set_method_attributes(self):
        self.cluster_weights_ = self.engine_.phi.detach().cpu().double().numpy()
        # the M-step floor the training rows got (``"auto"`` is bounded by their count)
        self.schedule_["min_m_steps"] = self.engine_.m_step_floor(self.engine_.W.shape[0])

