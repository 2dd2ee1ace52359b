"""Recording: the model's internals as tidy data, without changing what the model computes."""

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from drawviz.model import DRAW, DrawConfig
from drawviz import probes
from drawviz.probes import record, record_generation
from drawviz.trace import FRAME_COLUMNS


@pytest.fixture
def model():
    torch.manual_seed(0)
    return DRAW(DrawConfig(T=6, enc_size=32, dec_size=32, z_size=8, read_n=3, write_n=4))


@pytest.fixture
def x(mnist_test):
    return mnist_test.images[:5]


def test_probes_leave_the_loss_unchanged(model, x):
    plain = model(x, generator=torch.Generator().manual_seed(7)).loss.item()
    assert record(model, x, seed=7).loss == plain
    assert record(model, x, seed=8).loss != plain  # the seed matters: the check above could fail


def test_the_frame_is_tidy_with_the_documented_columns(model, x):
    frame = record(model, x).frame
    assert list(frame.columns) == FRAME_COLUMNS
    assert len(frame) == 5 * 6 * 2  # one row per (sample, step, op)
    assert not frame.duplicated(["sample", "step", "op"]).any()
    assert sorted(frame["step"].unique()) == list(range(1, 7))
    assert set(frame["op"]) == {"read", "write"}
    assert frame[["g_x", "g_y", "delta", "sigma", "gamma"]].notna().all().all()
    import seaborn as sns

    grid = sns.relplot(data=frame, x="step", y="g_x", hue="op", kind="line")
    matplotlib.pyplot.close(grid.figure)


def test_the_frame_holds_pixel_space_sigma_not_sigma2(model, x):
    trace = record(model, x)
    sigma2 = trace.windows["read"].sigma2  # (T, batch)
    read = trace.frame[trace.frame.op == "read"].sort_values(["step", "sample"])
    assert np.allclose(read["sigma"].to_numpy(), np.sqrt(sigma2).ravel())
    g_x = trace.windows["write"].g_x
    write = trace.frame[trace.frame.op == "write"].sort_values(["step", "sample"])
    assert np.allclose(write["g_x"].to_numpy(), g_x.ravel())


def test_arrays_have_time_first_and_agree_with_the_model(model, x):
    trace = record(model, x, seed=3)
    out = model(x, generator=torch.Generator().manual_seed(3))
    assert trace.canvas.shape == trace.x_hat.shape == (6, 5, 1, 28, 28)
    assert trace.glimpse.shape == (6, 5, 2, 1, 3, 3)
    assert trace.write_patch.shape == (6, 5, 1, 4, 4)
    assert trace.kl.shape == (6, 5)
    assert np.allclose(trace.canvas[-1], torch.sigmoid(out.canvas).detach().numpy(), atol=1e-6)
    # x̂_t = x − σ(c_{t−1}): each error image uses the canvas of the step before
    c0 = torch.sigmoid(model.c0).detach().numpy()
    assert np.allclose(trace.x_hat[0], x.numpy() - c0, atol=1e-6)
    assert np.allclose(trace.x_hat[1:], x.numpy()[None] - trace.canvas[:-1], atol=1e-5)
    assert not np.allclose(trace.canvas[0], trace.canvas[-1])  # nothing overwritten per step


def test_generation_is_recorded_too(model):
    trace = record_generation(model, 4, seed=0)
    assert trace.canvas.shape == (6, 4, 1, 28, 28)
    assert set(trace.frame["op"]) == {"write"} and len(trace.frame) == 4 * 6
    again = record_generation(model, 4, seed=0)
    assert np.array_equal(trace.canvas, again.canvas)
    frames = model.generate(4, generator=torch.Generator().manual_seed(0))
    assert np.allclose(trace.canvas, frames.numpy())


def test_no_attention_records_canvases_and_an_empty_frame():
    model = DRAW(DrawConfig(T=3, enc_size=16, dec_size=16, z_size=4, attention=False))
    trace = record(model, torch.rand(2, 1, 28, 28))
    assert trace.canvas.shape == (3, 2, 1, 28, 28) and trace.glimpse is None
    assert list(trace.frame.columns) == FRAME_COLUMNS and trace.frame.empty


def test_fast_recordings_never_share_memory_with_a_live_trace():
    """The fast path reuses its recording buffers (fresh pages cost ~10% of a forward pass), but
    only once the trace holding them is gone."""
    from drawviz.fast import make_fast

    m = DRAW(DrawConfig(height=12, width=12, T=4, enc_size=16, dec_size=16, z_size=4, read_n=2, write_n=3))
    f = make_fast(m, compile=False)
    x1, x2 = torch.rand(3, 1, 12, 12), torch.rand(3, 1, 12, 12)
    ptrs = lambda t: {a.__array_interface__["data"][0] for a in (t.x_hat, t.canvas)}
    first = probes.record(f, x1, seed=0)
    kept = first.x_hat.copy(), first.canvas.copy()
    second = probes.record(f, x2, seed=0)
    assert not ptrs(first) & ptrs(second)
    dropped = ptrs(second)
    del second
    third = probes.record(f, x2, seed=0)
    assert ptrs(third) == dropped  # the dropped trace's memory, reused
    np.testing.assert_array_equal(first.x_hat, kept[0])  # the live one, untouched
    np.testing.assert_array_equal(first.canvas, kept[1])
    reference = probes.record(m, x2, seed=0)
    np.testing.assert_allclose(third.canvas, reference.canvas, rtol=1e-5, atol=1e-6)


def test_kl_summed_from_the_tidy_frames_equals_the_models(model, x):
    trace = record(model, x, seed=3)
    out = model(x, generator=torch.Generator().manual_seed(3))
    per_image = trace.steps.groupby("sample").kl.sum().to_numpy()
    assert np.allclose(per_image, out.kl.sum(0).detach().numpy(), rtol=1e-5)
    assert len(trace.steps) == 6 * 5 and "kl" not in trace.frame.columns  # one KL per (sample, step), once


@pytest.mark.parametrize("mode", ["reconstruction", "generation"])
@pytest.mark.parametrize("attention", [True, False])
def test_every_tapped_quantity_is_declared_once_in_step_order_with_its_shape(mode, attention):
    from drawviz import quantities as Q
    from drawviz.attention import Window

    m = DRAW(DrawConfig(T=3, enc_size=16, dec_size=16, z_size=4, read_n=3, write_n=4, attention=attention))
    seen = []

    def tap(name, t, value):
        seen.append((t, name))
        expected = Q.expected_shape(name, m.config, 2)
        shapes = {tuple(f.shape) for f in value} if isinstance(value, Window) else {tuple(value.shape)}
        assert shapes == {expected}, (name, shapes, expected)
        assert isinstance(value, Window) == Q.is_window(name), name
        return value

    if mode == "reconstruction":
        m(torch.rand(2, 1, 28, 28), tap=tap)
    else:
        m.generate(2, tap=tap)
    order = Q.available(m.config, mode)
    assert seen == [(t, name) for t in (1, 2, 3) for name in order]


@pytest.mark.parametrize("attention", [True, False])
def test_one_runner_records_every_declared_quantity_by_name_on_both_paths(attention):
    from drawviz import quantities as Q
    from drawviz.fast import make_fast

    config = DrawConfig(T=3, enc_size=16, dec_size=16, z_size=4, read_n=2, write_n=3, attention=attention)
    model = DRAW(config).eval()
    x = (torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    reference, fast = probes.run(model, x), probes.run(make_fast(model, compile=False), x)
    for mode, trace in (("reconstruction", reference), ("reconstruction", fast), ("generation", probes.run(model, n=5))):
        assert trace.names == Q.available(config, mode)  # declared, in step order
        for name in trace.names:
            shape = Q.expected_shape(name, config, trace.batch)
            value = trace[name]
            fields = value if Q.is_window(name) else (value,)
            assert all(f.shape == (config.T, *shape) for f in fields), name
    for name in reference.names:
        np.testing.assert_allclose(np.asarray(fast[name]), np.asarray(reference[name]), rtol=1e-4, atol=1e-5, err_msg=name)
    with pytest.raises(KeyError, match="holds"):
        probes.run(model, n=5)["x_hat"]  # a sample from the prior has no error image


def test_a_recording_beyond_ulimit_v_is_refused_before_it_starts(tmp_path):
    """Issue 32, case 14: the memory check passed and numpy died of a raw MemoryError under ulimit -v."""
    import subprocess
    import sys

    script = """
import resource
from pathlib import Path
import torch
from drawviz import probes
from drawviz.model import DRAW, DrawConfig
size = next(int(l.split()[1]) * 1024 for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (size + 2**30, resource.RLIM_INFINITY))  # 1 GiB more than now
try:
    probes.record(DRAW(DrawConfig()), torch.zeros(10_000, 1, 28, 28))
except MemoryError as err:
    print("refused:", err)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert "refused: recording 10,000 images" in proc.stdout and "ulimit" in proc.stdout, proc.stdout + proc.stderr


# issue 21
def test_a_recording_too_large_for_free_memory_is_refused_with_what_it_needs(monkeypatch):
    from drawviz import trace

    monkeypatch.setattr(trace, "_available_memory", lambda: 2**30)  # 1 GiB free (what the trace's memory check reads)
    needed = trace.trace_bytes(DrawConfig(), 10_000) * trace.PEAK["chunked"] / 2**30
    with pytest.raises(MemoryError, match=rf"about {needed:.1f} GiB.*may use 1\.0 GiB more.*record at most about"):
        probes.record(DRAW(DrawConfig()), torch.zeros(10_000, 1, 28, 28))


def test_a_large_recording_runs_in_chunks_with_the_numbers_of_one_pass(small_draw, three_binary_images):
    # issue 21; small_draw and three_binary_images come from conftest.py
    images = three_binary_images.repeat(5, 1, 1, 1)  # 15 images
    whole, chunked = probes.record(small_draw, images, seed=3), probes.record(small_draw, images, seed=3, chunk=4)
    for name in ("canvas", "x_hat", "glimpse", "write_patch", "kl", "z", "h_enc", "h_dec", "edit_area"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(whole, name), rtol=1e-5, atol=1e-6, err_msg=name)
    assert chunked.loss == pytest.approx(whole.loss, rel=1e-6) and chunked.frame.shape == whole.frame.shape
