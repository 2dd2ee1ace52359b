"""drawviz.fast gives the reference DRAW's numbers, records the same trace, and falls back to eager."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch

from drawviz import probes
from drawviz.attention import Window
from drawviz.fast import FastDRAW, _Ops, make_fast
from drawviz.model import DRAW, DrawConfig

ROOT = Path(__file__).resolve().parents[1]


def small(**kw):
    base = dict(height=12, width=10, T=4, enc_size=16, dec_size=12, z_size=5, read_n=3, write_n=2)
    return DrawConfig(**{**base, **kw})


def model_for(cfg, seed=0):
    torch.manual_seed(seed)
    m = DRAW(cfg).double()
    with torch.no_grad():  # move off the zero-init state so every gradient path is exercised
        for p in m.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return m


@pytest.mark.parametrize("attention", [True, False])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("square", [True, False])
@pytest.mark.parametrize("unroll", [False, True])
def test_fast_equals_reference_loss_and_gradients(attention, channels, square, unroll):
    cfg = small(attention=attention, channels=channels, width=12 if square else 10)
    m = model_for(cfg)
    x = torch.rand(5, *cfg.image_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    eps = m.sample_eps(5, torch.Generator().manual_seed(2))
    ref = m(x, eps)
    ref.loss.backward()
    ref_grads = {n: p.grad.clone() for n, p in m.named_parameters()}
    m.zero_grad()
    f = FastDRAW(m)
    f.ops = _Ops(unroll=unroll)  # the filterbank products as GEMMs or as multiply-and-sum (compiled)
    out = f(x, eps)
    out.loss.backward()
    for a, b in zip(ref, out):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
    for n, p in m.named_parameters():
        torch.testing.assert_close(p.grad, ref_grads[n], rtol=1e-8, atol=1e-10, msg=lambda s: f"{n}: {s}")


@pytest.mark.parametrize("attention", [True, False])
@pytest.mark.parametrize("channels", [1, 3])
def test_a_scale_canvas_on_the_fast_path_gives_the_reference_loss_gradients_and_trace(attention, channels):
    """Issue 33's arm: [c_t | s_t] painted through one window as 2C channels; s_0 and write_s get their gradients."""
    cfg = small(attention=attention, channels=channels, likelihood="logistic", scale_canvas=True)
    m = model_for(cfg)
    x = (torch.rand(5, *cfg.image_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 255).round() / 255
    eps = m.sample_eps(5, torch.Generator().manual_seed(2))
    ref = m(x, eps)
    ref.loss.backward()
    ref_grads = {n: p.grad.clone() for n, p in m.named_parameters()}
    m.zero_grad()
    out = FastDRAW(m)(x, eps)
    out.loss.backward()
    for a, b in zip(ref, out):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
    assert {"s0", "write_scale.weight", "write_scale.bias"} <= set(ref_grads)
    for n, p in m.named_parameters():
        torch.testing.assert_close(p.grad, ref_grads[n], rtol=1e-8, atol=1e-10, msg=lambda s: f"{n}: {s}")
    m = m.float()
    ref, fast = probes.record(m, x.float(), seed=7), probes.record(make_fast(m), x.float(), seed=7)
    for name in ("canvas", "scale_canvas", "write_patch", "x_hat"):
        torch.testing.assert_close(torch.from_numpy(fast[name]), torch.from_numpy(ref[name]), rtol=1e-4, atol=1e-5)
    calls = {}
    for key, model in (("ref", m), ("fast", make_fast(m))):
        calls[key] = []
        model(x.float(), eps.float(), tap=lambda n, t, v, c=calls[key]: c.append((n, t, _shape(v))) or v)
    assert calls["fast"] == calls["ref"]  # the same quantities, s_t included, in the reference's order


def test_float32_and_generator_path():
    cfg = small()
    m = DRAW(cfg)
    x = torch.rand(4, *cfg.image_shape)
    ref = m(x, generator=torch.Generator().manual_seed(3))
    out = make_fast(m)(x, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out.loss, ref.loss, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(out.kl, ref.kl, rtol=1e-4, atol=1e-5)


def test_shares_parameters_and_state_dict():
    m = DRAW(small())
    f = make_fast(m, compile=False)
    assert list(f.state_dict()) == list(m.state_dict())
    assert [p.data_ptr() for p in f.parameters()] == [p.data_ptr() for p in m.parameters()]
    other = DRAW(small())
    f.load_state_dict(other.state_dict())
    torch.testing.assert_close(m.c0, other.c0)


def test_compile_failure_falls_back_to_eager(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    m = DRAW(small())
    x = torch.rand(3, *m.config.image_shape)
    eps = m.sample_eps(3)
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        f = make_fast(m, compile=True)
    assert not f.ops.compiled
    torch.testing.assert_close(f(x, eps).loss, m(x, eps).loss, rtol=1e-5, atol=1e-4)


def test_lazy_compile_failure_falls_back_on_first_call(monkeypatch):
    def fails_when_called(fn, **kwargs):
        def compiled(*args):
            raise RuntimeError("backend compiler failed")

        return compiled

    monkeypatch.setattr(torch, "compile", fails_when_called)
    m = DRAW(small())
    f = make_fast(m, compile=True)
    x = torch.rand(3, *m.config.image_shape)
    eps = m.sample_eps(3)
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        loss = f(x, eps).loss
    assert not f.ops.compiled
    torch.testing.assert_close(loss, m(x, eps).loss, rtol=1e-5, atol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, not every step
        f(x, eps)


@pytest.mark.parametrize("attention", [True, False])
def test_probes_record_same_trace(attention):
    m = model_for(small(attention=attention, channels=3)).float()
    x = torch.rand(3, *m.config.image_shape, generator=torch.Generator().manual_seed(4))
    ref = probes.record(m, x, seed=7)
    fast = probes.record(make_fast(m), x, seed=7)
    pd.testing.assert_frame_equal(fast.frame, ref.frame, rtol=1e-4, atol=1e-5)
    pd.testing.assert_frame_equal(fast.steps, ref.steps, rtol=1e-4, atol=1e-5)
    for name in ("canvas", "x_hat", "glimpse", "write_patch", "kl", "z", "mu", "sigma_z", "h_enc", "h_dec"):
        a, b = getattr(ref, name), getattr(fast, name)
        assert (a is None) == (b is None), name
        if a is not None:
            torch.testing.assert_close(torch.from_numpy(b), torch.from_numpy(a), rtol=1e-4, atol=1e-5)
    assert fast.loss == pytest.approx(ref.loss, rel=1e-5)
    gen_ref = probes.record_generation(m, 2, seed=1)
    gen_fast = probes.record_generation(make_fast(m), 2, seed=1)
    pd.testing.assert_frame_equal(gen_fast.frame, gen_ref.frame)


def _shape(v):
    return tuple(tuple(f.shape) for f in v) if isinstance(v, Window) else tuple(v.shape)


def test_recorder_sees_reference_call_order():
    m = DRAW(small())
    x = torch.rand(2, *m.config.image_shape)
    eps = m.sample_eps(2)
    names = {}
    for key, model in (("ref", m), ("fast", make_fast(m))):
        calls = []
        model(x, eps, tap=lambda n, t, v, calls=calls: calls.append((n, t, _shape(v))) or v)
        names[key] = calls
    assert names["fast"] == names["ref"]
    torch.testing.assert_close(
        make_fast(m).reconstruct(x, generator=torch.Generator().manual_seed(0)),
        m.reconstruct(x, generator=torch.Generator().manual_seed(0)),
    )


def test_benchmark_runs_in_tiny_mode(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench.py"),
            "--tiny",
            "--out",
            str(tmp_path),
            "--cases",
            "mnist b64,cifar10 b64",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "speedup" in proc.stdout
    data = json.loads((tmp_path / "bench.json").read_text())
    assert [r["case"] for r in data["rows"]] == ["mnist b64", "cifar10 b64"]
    assert data["hardware"]["cpu"]
    assert (tmp_path / "bench.csv").read_text().startswith("case,")


@pytest.mark.parametrize("bf16", [False, True])
def test_compiled_steps_match_reference(bf16):
    """A tiny torch.compile run (the rest of the suite stays eager): same loss and gradients
    (with bfloat16 GEMMs: within bfloat16's rounding)."""
    cfg = small(T=2)
    m = model_for(cfg).float()
    x = torch.rand(3, *cfg.image_shape, generator=torch.Generator().manual_seed(1))
    eps = m.sample_eps(3, torch.Generator().manual_seed(2))
    ref = m(x, eps)
    ref.loss.backward()
    ref_grads = {n: p.grad.clone() for n, p in m.named_parameters()}
    m.zero_grad()
    f = make_fast(m, compile=True, bf16=bf16)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback to eager
        out = f(x, eps)
        out.loss.backward()
    assert f.ops.compiled and f.ops.unroll  # compiled: the filterbank products are fused too
    tol = dict(rtol=2e-2, atol=2e-2) if bf16 else dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.loss, ref.loss, rtol=1e-2 if bf16 else 1e-5, atol=1e-4)
    for n, p in m.named_parameters():
        torch.testing.assert_close(p.grad, ref_grads[n], **tol, msg=lambda s: f"{n}: {s}")


def test_auto_compiles_preset_sized_networks_only():
    assert not make_fast(DRAW(small()), compile="auto").ops.compiled
    assert make_fast(DRAW(DrawConfig.preset("mnist", T=16)), compile="auto").ops.compiled


def test_bf16_gemms_keep_the_loss_within_tolerance():
    """make_fast(bf16=True): the GEMMs run in bfloat16, the loss stays within 1% and the gradient
    points the same way; parameters and the recorded canvases stay fp32."""
    cfg = small(T=6, enc_size=32, dec_size=32, z_size=8)
    m = model_for(cfg).float()
    x = torch.rand(16, *cfg.image_shape, generator=torch.Generator().manual_seed(1))
    eps = m.sample_eps(16, torch.Generator().manual_seed(2))
    ref = m(x, eps)
    ref.loss.backward()
    ref_grad = torch.cat([p.grad.flatten() for p in m.parameters()]).double()
    m.zero_grad()
    f = make_fast(m, compile=False, bf16=True)
    out = f(x, eps)
    out.loss.backward()
    grad = torch.cat([p.grad.flatten() for p in m.parameters()]).double()
    assert f._workspace["dPd"].dtype == torch.bfloat16  # the weight-gradient GEMM operands
    assert out.loss.item() != ref.loss.item()  # rounded, so not bit-equal: bf16 is really in use
    assert out.loss.item() == pytest.approx(ref.loss.item(), rel=1e-2)
    assert torch.isfinite(grad).all() and all(p.dtype == torch.float32 for p in m.parameters())
    assert torch.nn.functional.cosine_similarity(grad, ref_grad, 0) > 0.99
    assert out.canvas.dtype == torch.float32


def test_bf16_on_a_cpu_without_bfloat16_dot_products_warns(monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    with pytest.warns(RuntimeWarning, match="no native bfloat16"):
        f = make_fast(DRAW(small()), compile=False, bf16=True)
    assert f.bf16
