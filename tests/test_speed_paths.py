"""Precision, convergence stopping and the device-side training loop (CUDA paths on CPU)."""

import shutil
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from skganem import KMGAN, GANEMClustering, _device
from skganem._device import DataSource, fast_cuda, resolve_precision
from skganem._engines._base import draw_indices, epoch_batches, make_adam
from skganem._scaling import RangeScaler

from conftest import ESTIMATOR_CLASSES, tiny


# -- precision -------------------------------------------------------------------------
def test_resolve_precision(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16
    monkeypatch.setattr(_device, "bf16_supported", lambda device: True)
    assert resolve_precision("auto", cpu) is torch.bfloat16
    assert resolve_precision("auto", cpu, conv=False) is None  # perceptrons stay float32
    assert resolve_precision("bf16", cpu, conv=False) is torch.bfloat16
    monkeypatch.setattr(_device, "bf16_supported", lambda device: False)
    assert resolve_precision("auto", cpu) is None
    with pytest.raises(ValueError, match="MPS"):
        resolve_precision("bf16", torch.device("mps"))


def test_cuda_bf16_follows_the_card(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", torch.device("cuda")) is None
    with pytest.raises(ValueError, match="does not support bfloat16"):
        resolve_precision("bf16", torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", torch.device("cuda")) is torch.bfloat16


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES)
def test_bf16_runs_networks_in_bf16_and_returns_float(cls, images):
    X, _ = images
    est = tiny(cls, n_clusters=2, architecture="conv", precision="bf16", random_state=0).fit(X)
    engine = est.engine_
    assert engine.amp_dtype is torch.bfloat16
    seen = []
    convs = [m for net in engine.nets.values() for m in net.modules()
             if isinstance(m, torch.nn.Conv2d)]
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    assert all(c.weight.dtype == torch.float32 for c in convs)  # weights stay float32
    handles = [c.register_forward_hook(lambda m, i, o: seen.append(o.dtype)) for c in convs]
    proba = est.predict_proba(X)
    for h in handles:
        h.remove()
    assert seen and all(d == torch.bfloat16 for d in seen)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    fp32 = tiny(cls, n_clusters=2, precision="fp32", random_state=0).fit(X)
    assert fp32.engine_.amp_dtype is None
    assert fp32.transform(X).dtype == np.float32


def test_same_seed_same_labels_in_bf16(blobs):
    from skganem import GANEMClustering

    X, _ = blobs
    a = tiny(GANEMClustering, n_clusters=3, precision="bf16", random_state=3).fit(X)
    b = tiny(GANEMClustering, n_clusters=3, precision="bf16", random_state=3).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)


# -- stopping on convergence ---------------------------------------------------------------
@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES)
def test_tol_stops_early_and_records_label_change(cls, blobs):
    X, _ = blobs
    est = tiny(cls, n_clusters=3, n_iter=8, tol=1.0, n_iter_no_change=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.filterwarnings("ignore", message=".*near-empty", category=ConvergenceWarning)
        est.fit(X)
    game = [h for h in est.history_ if "label_change" in h]
    assert est.converged_
    assert len(game) == 2 and est.n_iter_ < 8
    assert all(0.0 <= h["label_change"] <= 1.0 for h in game)


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES)
def test_reaching_n_iter_unconverged_warns(cls, blobs):
    X, _ = blobs
    est = tiny(cls, n_clusters=3, n_iter=2, tol=0.0, n_iter_no_change=5, random_state=0)
    with pytest.warns(ConvergenceWarning, match="reached n_iter=2 iterations before"):
        est.fit(X)
    assert not est.converged_ and est.n_iter_ == 2


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES)
def test_tol_none_runs_every_iteration_without_warning(cls, blobs):
    X, _ = blobs
    est = tiny(cls, n_clusters=3, n_iter=3, tol=None, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X)
    assert est.n_iter_ == 3
    assert not [w for w in caught if "before converging" in str(w.message)]


# -- the device-side loop -----------------------------------------------------------------
def test_batches_are_drawn_on_the_device_from_torch_seed():
    torch.manual_seed(0)
    a = [b.clone() for b in epoch_batches(10, 4, 5, torch.device("cpu"))]
    torch.manual_seed(0)
    b = list(epoch_batches(10, 4, 5, torch.device("cpu")))
    assert all(torch.is_tensor(x) and x.device.type == "cpu" and x.numel() == 4 for x in a)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    # each permutation is walked without repeats: the first two batches are disjoint
    assert not set(a[0].tolist()) & set(a[1].tolist())
    assert draw_indices(3, 5, torch.device("cpu")).numel() == 5
    assert len(set(draw_indices(10, 5, torch.device("cpu")).tolist())) == 5


def test_preloaded_rows_take_device_indices_and_streamed_rows_host_ones(tmp_path):
    X = np.random.RandomState(0).rand(20, 3).astype(np.float32)
    scaler = RangeScaler.fit(X, per_feature=True)
    data = DataSource(X, scaler, torch.device("cpu"), (3,))
    assert data.index_device == data.device
    path = tmp_path / "x.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    streamed = DataSource(mm, scaler, torch.device("cpu"), (3,))
    assert streamed._cached is None and streamed.index_device.type == "cpu"
    idx = torch.tensor([4, 0, 7])
    torch.testing.assert_close(streamed.rows(idx), data.rows(idx))


def test_adam_is_fused_on_cuda_and_cpu_and_foreach_elsewhere():
    p = [torch.nn.Parameter(torch.zeros(3))]
    assert make_adam(p, 1e-3, torch.device("cuda")).defaults["fused"] is True
    cpu = make_adam(p, 1e-3, torch.device("cpu")).defaults
    assert cpu["fused"] is True and not cpu["foreach"]
    assert cpu["betas"] == (0.5, 0.999)
    mps = make_adam(p, 1e-3, torch.device("mps")).defaults
    assert mps["foreach"] is True and not mps["fused"]


def test_fast_cuda_sets_and_restores_the_flags():
    before = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with fast_cuda(torch.device("cuda")):
            assert torch.backends.cudnn.benchmark and torch.backends.cuda.matmul.allow_tf32
        assert not torch.backends.cudnn.benchmark
        assert not torch.backends.cuda.matmul.allow_tf32
        with fast_cuda(torch.device("cpu")):
            assert not torch.backends.cudnn.benchmark
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32 = before


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES)
def test_compile_compiles_every_network(cls, blobs, monkeypatch):
    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **k: compiled.append(self))
    X, _ = blobs
    est = tiny(cls, n_clusters=3, compile=True, random_state=0).fit(X)
    engine = est.engine_
    expected = {id(n) for name, n in engine.nets.items() if name not in engine.double_backward_nets}
    assert expected == {id(m) for m in compiled}
    compiled.clear()
    tiny(cls, n_clusters=3, random_state=0).fit(X)
    assert compiled == []


def test_amm_auto_epochs_follow_an_update_budget(blobs):
    from skganem import AMMClustering

    est = AMMClustering(batch_size=64)
    assert est.n_iter == "auto"
    assert est._max_iter(1797) == 138      # digits: 29 updates per epoch
    assert est._max_iter(10000) == 26      # MNIST-10k: 157 updates per epoch
    assert est._max_iter(569) == 445       # breast cancer: 9 updates per epoch
    assert est._max_iter(178) == 600       # wine: 3 updates per epoch, capped
    assert est._max_iter(10 ** 7) == 10    # floored
    assert AMMClustering(n_iter=7)._max_iter(10 ** 7) == 7
    X, _ = blobs
    fitted = tiny(AMMClustering, n_clusters=3, n_iter="auto", tol=1.0, random_state=0).fit(X)
    assert fitted.converged_ and fitted.n_iter_ == 2


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_amm_compiled_fit_runs_its_gradient_penalty(blobs, monkeypatch):
    """A compiled module's backward cannot be differentiated, and AMM's gradient penalty
    differentiates the critic's gradients: the critic stays uncompiled. Compiled here with
    AOT autograd on the eager backend (no C++ compiler needed), which raises "does not
    currently support double backward" if the critic is compiled."""
    from skganem import AMMClustering

    original = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile",
                        lambda self, *a, **k: original(self, backend="aot_eager"))
    X, _ = blobs
    torch._dynamo.reset()
    try:
        est = tiny(AMMClustering, n_clusters=3, compile=True, random_state=0).fit(X)
    finally:
        torch._dynamo.reset()
    assert est.engine_.double_backward_nets == ("D",)
    assert np.isfinite(est.history_[-1]["loss_d"])


@pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")),
                    reason="torch.compile's CPU backend needs a C compiler")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_compiled_bf16_conv_fit_trains_on_cpu():
    """GAN-EM's conv nets in bfloat16 with the default backend (inductor). Were the E-net's
    dropout to break the graph, resumed frames of the encoders' shared code would run batch
    normalisation eagerly, and a compiled call's update of its running statistics would fail
    the D step's backward in the second iteration ("modified by an inplace operation").
    About 20-65 s on 2 cores, most of it compiling."""
    rng = np.random.RandomState(0)
    X = (rng.rand(120, 16, 16) * (np.arange(120) % 3)[:, None, None] / 2).astype(np.float32)
    torch._dynamo.reset()
    try:
        est = GANEMClustering(n_clusters=3, conv_channels=(4, 8), hidden_dims=(16,),
                              n_components=4, n_iter=2, min_m_steps=4, e_steps=3,
                              e_batch_size=16, batch_size=16, n_init=1, precision="bf16",
                              compile=True, random_state=0).fit(X)
    finally:
        torch._dynamo.reset()
    assert est.n_iter_ == 2 and np.isfinite(est.history_[-1]["loss_d"])
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)


def test_fast_dropout_does_not_break_a_compiled_graph():
    from skganem._networks import Dropout

    x = torch.randn(8, 4, 6, 6)
    explained = torch._dynamo.explain(Dropout(0.3).train())(x)
    torch._dynamo.reset()
    assert explained.graph_break_count == 0 and explained.graph_count == 1


def test_compile_raises_the_recompile_limit(blobs, monkeypatch):
    """KM-GAN's discriminator is called in nine modes; beyond the limit calls run eagerly."""
    import torch._dynamo.config as dynamo_config
    from skganem._engines._base import RECOMPILE_LIMIT

    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **k: None)
    monkeypatch.setattr(dynamo_config, "recompile_limit", 8)
    X, _ = blobs
    tiny(KMGAN, n_clusters=3, compile=True, random_state=0).fit(X)
    assert dynamo_config.recompile_limit == RECOMPILE_LIMIT


# -- dropout with a cheaper CPU mask ----------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_fast_dropout_keeps_1_minus_p_and_the_expectation(p, dtype):
    from skganem._networks import Dropout

    torch.manual_seed(0)
    drop = Dropout(p).train()
    x = torch.ones(200_001, dtype=dtype)  # not a multiple of 4: the last 64-bit draw is cut
    out = drop(x)
    assert out.dtype == dtype and out.shape == x.shape
    kept = out != 0
    assert kept.float().mean().item() == pytest.approx(1 - p, abs=0.005)
    assert out.float().mean().item() == pytest.approx(1.0, abs=0.01)
    # the 16-bit slices of one 64-bit draw are independent: keep rates per slice agree
    per_slice = kept[:200_000].view(-1, 4).float().mean(0)
    np.testing.assert_allclose(per_slice.numpy(), 1 - p, atol=0.01)
    # gradients flow through kept elements only, scaled like the output
    x32 = torch.ones(1000, requires_grad=True)
    y = drop(x32)
    y.sum().backward()
    torch.testing.assert_close(x32.grad, y.detach())


def test_fast_dropout_is_seeded_and_off_in_eval():
    from skganem._networks import Dropout

    drop = Dropout(0.2)
    x = torch.randn(3, 8, 5, 5)
    torch.manual_seed(1)
    a = drop(x)
    torch.manual_seed(1)
    torch.testing.assert_close(drop(x), a)
    assert not torch.equal(drop(x), a)
    torch.testing.assert_close(drop.eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)


def test_fast_dropout_mask_follows_the_memory_layout():
    from skganem._networks import Dropout

    drop = Dropout(0.3).train()
    x = torch.randn(4, 6, 5, 5).contiguous(memory_format=torch.channels_last)
    torch.manual_seed(3)
    a = drop(x)
    assert a.is_contiguous(memory_format=torch.channels_last)
    torch.manual_seed(3)
    b = drop(x.permute(0, 2, 3, 1).contiguous())  # the same memory, read in logical order
    torch.testing.assert_close(a.permute(0, 2, 3, 1), b)
    # a strided (non-dense) input gets a contiguous mask of the same statistics
    y = torch.ones(400, 300)[:, ::3]
    kept = (drop(y) != 0).float().mean().item()
    assert kept == pytest.approx(0.7, abs=0.01)


def test_enet_and_amm_networks_use_the_fast_dropout(images):
    from skganem import AMMClustering, GANEMClustering
    from skganem._networks import Dropout

    amm = tiny(AMMClustering, n_clusters=2, conv_channels=(4, 8), random_state=0).fit(images[0])
    drops = [m for net in amm.engine_.nets.values() for m in net.modules()
             if isinstance(m, torch.nn.Dropout)]
    assert drops and all(isinstance(m, Dropout) for m in drops)
    gan = tiny(GANEMClustering, n_clusters=2, conv_channels=(4, 8), random_state=0).fit(images[0])
    drops = [m for net in gan.engine_.nets.values() for m in net.modules()
             if isinstance(m, torch.nn.Dropout)]
    assert drops and all(isinstance(m, Dropout) for m in drops)
