"""Interventions (issue 12): hooks that read and replace DRAW's declared per-step quantities."""

import numpy as np
import pytest
import torch

from drawviz import probes
from drawviz.model import DRAW, DrawConfig
from drawviz import quantities as Q
from drawviz.attention import Window
from drawviz.fast import make_fast
from drawviz.interventions import InterventionError, freeze_window, run_with_hooks, scale_gamma, set_window, set_z, zero_write

CONFIG = DrawConfig(T=6, enc_size=32, dec_size=32, z_size=5, read_n=3, write_n=4)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DRAW(CONFIG).eval()


@pytest.fixture(scope="module")
def x():
    return torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def _same(a, b):
    for name in ("canvas", "x_hat", "glimpse", "write_patch", "kl", "z", "mu", "sigma_z", "h_enc", "h_dec"):
        if getattr(a, name) is not None:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for op in a.windows:
        for field in Window._fields:
            np.testing.assert_array_equal(getattr(a.windows[op], field), getattr(b.windows[op], field))


def test_identity_hooks_on_every_quantity_leave_every_output_equal(model, x):
    plain = probes.record(model, x, seed=0)
    names = Q.available(CONFIG, "reconstruction")
    hooked = run_with_hooks(
        model, x, hooks=[(n, lambda v, t: None) for n in names] + [(n, lambda v, t: v) for n in names], seed=0
    )
    _same(plain, hooked)
    assert hooked.loss == plain.loss and hooked.hooks == tuple(names) * 2
    out = model(x, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(hooked.recon_nll[-1], out.nll.detach().numpy(), rtol=1e-6)  # error left at t = T
    gen = run_with_hooks(model, n=3, hooks={Q.Z: lambda v, t: v}, seed=2)
    _same(probes.record_generation(model, 3, seed=2), gen)


def test_setting_the_write_window_at_step_t_changes_the_canvas_from_t_on_and_only_where_its_filters_reach(model, x):
    t, g, delta, sigma2, N = 3, 8.0, 1.0, 0.36, CONFIG.write_n
    silent = run_with_hooks(model, x, hooks=[zero_write(t)])
    placed = run_with_hooks(
        model, x, hooks=[zero_write(t), set_window("write", t, g_x=g, g_y=g, delta=delta, sigma2=sigma2, gamma=1.0)]
    )
    plain = probes.record(model, x)
    np.testing.assert_array_equal(placed.canvas[: t - 1], plain.canvas[: t - 1])  # steps before t: untouched
    assert not np.allclose(placed.canvas[t - 1], plain.canvas[t - 1])
    # with the patch zeroed, a window writes nothing anywhere ...
    np.testing.assert_array_equal(placed.canvas[t - 1], silent.canvas[t - 1])
    # ... so write a patch of ones through the placed window: the change stays inside its filters' reach
    ones = run_with_hooks(
        model,
        x,
        hooks=[
            zero_write(t),
            (Q.WRITE_PATCH, lambda w, s: torch.ones_like(w) if s == t else None),
            set_window("write", t, g_x=g, g_y=g, delta=delta, sigma2=sigma2, gamma=1.0),
        ],
    )
    logit = lambda p: np.log(p) - np.log1p(-p)
    change = np.abs(logit(ones.canvas[t - 1].astype(np.float64)) - logit(silent.canvas[t - 1].astype(np.float64)))
    distance = np.abs(np.arange(1, 29) - g)  # pixels a = 1..28 from the grid centre, per axis
    core = distance <= (N - 1) * delta / 2  # between the outermost filter centres
    reach = distance <= N * delta / 2 + 5 * np.sqrt(sigma2)  # plus five filter standard deviations
    assert change[..., core[:, None] & core[None, :]].min() > 1e-3, "nothing written where the filters are"
    outside = ~(reach[:, None] & reach[None, :])
    assert change[..., outside].max() < 1e-4 * change.max(), "the change leaked outside the window's reach"
    assert not np.allclose(placed.canvas[-1], plain.canvas[-1])  # and the later steps respond


def test_hooks_do_not_outlive_a_call_that_raises(model, x):
    before = probes.record(model, x, seed=0)

    def boom(value, t):
        if t == 2:
            raise RuntimeError("a hook failed")

    with pytest.raises(RuntimeError, match="a hook failed"):
        run_with_hooks(model, x, hooks=[(Q.CANVAS, boom), scale_gamma("read", 3.0)])
    _same(before, probes.record(model, x, seed=0))
    assert not model._forward_hooks and not model._forward_pre_hooks


def test_unknown_names_wrong_shapes_and_missing_windows_are_clear_errors(model, x):
    with pytest.raises(InterventionError, match="no quantity is called 'canvs'.*x_hat"):
        run_with_hooks(model, x, hooks=[("canvs", lambda v, t: v)])
    with pytest.raises(InterventionError, match=r"returned shape \(4, 3\); z is \(4, 5\)"):
        run_with_hooks(model, x, hooks=[(Q.Z, lambda v, t: v[:, :3])])
    with pytest.raises(InterventionError, match="must stay a drawviz.attention.Window"):
        run_with_hooks(model, x, hooks=[(Q.READ_WINDOW, lambda w, t: torch.stack(tuple(w), 1))])
    with pytest.raises(InterventionError, match="generation pass does not compute it"):
        run_with_hooks(model, n=2, hooks=[(Q.X_HAT, lambda v, t: v)])
    plain = DRAW(DrawConfig(T=2, enc_size=8, dec_size=8, z_size=2, attention=False))
    with pytest.raises(InterventionError, match="without attention has no windows"):
        run_with_hooks(plain, x, hooks=[set_window("read", 1, g_x=3.0)])
    with pytest.raises(InterventionError, match="steps are t = 1..T"):
        zero_write(0)


def test_the_fast_path_refuses_hooks_and_says_to_use_the_reference_model(model, x):
    fast = make_fast(model)
    with pytest.raises(TypeError, match="reference model"):
        run_with_hooks(fast, x, hooks=[zero_write(1)])
    with pytest.raises(TypeError, match="reference model"):
        fast(x, tap=lambda name, t, v: torch.zeros_like(v) if name == Q.Z else v)  # a tap that replaces


def test_freeze_keeps_the_window_of_step_t_and_set_z_fixes_z(model, x):
    frozen = run_with_hooks(model, x, hooks=[freeze_window("write", 3)])
    w = frozen.windows["write"]
    for field in Window._fields:
        values = getattr(w, field)
        np.testing.assert_array_equal(values[3:], np.broadcast_to(values[2], values[3:].shape))
        assert not np.allclose(values[1], values[2]) or field == "gamma"
    z = torch.randn(4, CONFIG.z_size)
    fixed = run_with_hooks(model, x, hooks=[set_z({2: z})])
    np.testing.assert_allclose(fixed.z[1], z.numpy())
    np.testing.assert_array_equal(fixed.z[0], probes.record(model, x).z[0])


def test_the_same_eps_unless_told_otherwise(model, x):
    eps = model.sample_eps(4, torch.Generator().manual_seed(9))
    a = run_with_hooks(model, x, seed=0)
    b = run_with_hooks(model, x, eps=eps)
    assert a.loss == probes.record(model, x, seed=0).loss and a.loss != b.loss


def test_the_shipped_one_shot_model_is_a_plain_vae_one_write_and_one_kl_term():
    from pathlib import Path

    from drawviz.checkpoints import model_from_checkpoint

    vae = model_from_checkpoint(Path(__file__).resolve().parent.parent / "models" / "mnist-vae.pt", device="cpu")
    assert vae.config.T == 1 and not vae.config.attention
    x = (torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(2)) > 0.5).float()
    writes = []
    out = vae(x, tap=lambda name, t, v: writes.append((name, t)) or v)
    assert [w for w in writes if w[0] == Q.WRITE_PATCH] == [(Q.WRITE_PATCH, 1)]  # one write, of the whole image
    assert out.kl.shape == (1, 3)  # one KL term
    torch.testing.assert_close(out.loss, (out.nll + out.kl[0]).mean())
    trace = run_with_hooks(vae, x)
    assert trace.edit_area.shape == (1, 3) and len(trace.steps) == 3


def test_a_plain_run_with_hooks_measures_the_error_at_every_step_and_a_recording_does_not(model, x):
    plain = run_with_hooks(model, x, seed=0)
    assert plain.recon_nll.shape == (CONFIG.T, x.shape[0]) and "recon_nll" in plain.steps
    assert probes.record(model, x, seed=0).recon_nll is None


# ----------------------------------------------------------------------------- what no model could take (issue 21)
# small_draw (T = 4, z_size = 4) and three_binary_images come from conftest.py


@pytest.mark.parametrize(
    "hook",
    [
        lambda: set_window("read", 5, g_x=3.0),
        lambda: freeze_window("write", 99),
        lambda: set_z({50: torch.zeros(3, 4)}),
        lambda: zero_write([2, 9]),
        lambda: scale_gamma("write", 2.0, 7),
    ],
)
def test_an_intervention_at_a_step_the_model_does_not_have_is_refused(small_draw, three_binary_images, hook):
    with pytest.raises(InterventionError, match="T = 4"):
        run_with_hooks(small_draw, three_binary_images, hooks=[hook()])


@pytest.mark.parametrize("fields", [{"sigma2": 0.0}, {"g_x": float("inf")}, {"gamma": -1.0}, {"delta": float("nan")}])
def test_a_window_no_model_could_write_is_refused(fields):
    with pytest.raises(InterventionError, match="no window the model could write"):
        set_window("write", 2, **fields)


def test_numpy_steps_images_and_z_are_taken_as_meant(small_draw, three_binary_images):
    model, x = small_draw, three_binary_images
    plain = run_with_hooks(model, x, hooks=[set_window("read", 2, g_x=5.0)])
    as_numpy = run_with_hooks(model, x.numpy(), hooks=[set_window("read", np.int64(2), g_x=np.float32(5.0))])
    np.testing.assert_array_equal(plain.canvas, as_numpy.canvas)
    z = np.zeros((3, 4), dtype=np.float64)
    traced = run_with_hooks(model, x, hooks=[set_z({np.int64(3): z})])
    assert np.all(traced.z[2] == 0)
    with pytest.raises(InterventionError, match="integers"):
        set_window("read", 2.0, g_x=1.0)
    with pytest.raises(InterventionError, match="the one step"):
        freeze_window("write", [2, 3])


def test_images_without_a_channel_axis_are_blamed_not_the_target(small_draw, three_binary_images):
    from drawviz.model import InputError

    with pytest.raises(InputError, match="add the channel axis"):
        run_with_hooks(small_draw, three_binary_images[:, 0])
