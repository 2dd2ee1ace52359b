"""A drawing sequence saved as a GIF or MP4: one frame per step, the finished image held, written atomically."""

import shutil

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image, ImageSequence  # noqa: E402

from drawviz import animation, geometry, probes  # noqa: E402
from drawviz.model import DRAW, DrawConfig  # noqa: E402

T = 3


def _model(**kw) -> DRAW:
    torch.manual_seed(0)
    config = dict(height=12, width=12, T=T, enc_size=16, dec_size=16, z_size=4)
    return DRAW(DrawConfig(**{**config, **kw})).eval()


@pytest.fixture(scope="module")
def recon():
    g = torch.Generator().manual_seed(0)
    return probes.record(_model(), (torch.rand(3, 1, 12, 12, generator=g) > 0.6).float(), seed=0)


@pytest.fixture(scope="module")
def prior():
    return probes.record_generation(_model(), 2, seed=0)


@pytest.fixture(scope="module")
def colour():
    g = torch.Generator().manual_seed(0)
    return probes.record(_model(height=8, width=8, channels=3), torch.rand(2, 3, 8, 8, generator=g), seed=0)


def _durations(path) -> list:
    with Image.open(path) as im:
        return [frame.info["duration"] for frame in ImageSequence.Iterator(im)]


@pytest.mark.parametrize("kind", ["recon", "prior", "colour"])
def test_a_gif_has_one_frame_per_step_and_holds_the_last_one(kind, request, tmp_path):
    trace = request.getfixturevalue(kind)
    hold, fps = 4, 10  # 100 ms a frame: whole centiseconds, as GIF stores them
    out = animation.save_animation(trace, tmp_path / "draw.gif", fps=fps, hold=hold)
    assert out == tmp_path / "draw.gif" and out.stat().st_size > 0
    with Image.open(out) as im:
        assert im.format == "GIF"
        # T + hold frames are played; the hold repeats are identical, so the GIF stores them as
        # its last frame shown hold + 1 times as long
        assert im.n_frames == trace.T
    assert _durations(out) == [100] * (trace.T - 1) + [100 * (hold + 1)]
    assert sum(_durations(out)) == 1000 * (trace.T + hold) // fps
    assert plt.get_fignums() == [], "no pyplot figure is left open"


def test_without_hold_a_gif_has_exactly_one_frame_per_step(recon, tmp_path):
    out = animation.save_animation(recon, tmp_path / "draw.gif", samples=(0, 1, 99), fps=10, hold=0)
    with Image.open(out) as im:
        assert im.n_frames == recon.T
    assert _durations(out) == [100] * recon.T


@pytest.mark.parametrize("kind", ["recon", "prior", "colour"])
def test_each_frame_shows_the_canvas_with_the_steps_windows(kind, request):
    trace = request.getfixturevalue(kind)
    frames = animation._Frames(trace, [0, 1], dpi=40)
    assert set(op for op, _ in frames.rects) == ({"read", "write"} if kind != "prior" else {"write"})
    for t in range(1, trace.T + 1):
        frames.update(t)
        assert frames.title.get_text() == f"step {t} / {trace.T}"
        for s in (0, 1):
            shown = np.asarray(frames.images[s].get_array())
            # trace.canvas is already σ(c_t): shown as stored, not passed through a second sigmoid
            expected = trace.canvas[t - 1, s]
            np.testing.assert_allclose(shown, expected[0] if expected.shape[0] == 1 else np.moveaxis(expected, 0, -1))
            if expected.shape[0] == 1:
                assert frames.images[s].get_cmap().name == "gray" and frames.images[s].get_clim() == (0.0, 1.0)
            for op, colour in (("write", "#e8112d"), ("read", "#2ca02c")):
                if op not in trace.windows:
                    continue
                rect = frames.rects[op, s]
                assert matplotlib.colors.to_hex(rect.get_edgecolor()) == colour
                g_x, g_y, delta = trace.windows[op].at(t - 1, s)[:3]
                N = geometry.grid_n(trace, op)
                assert rect.get_x() == pytest.approx(g_x - 1 - N * delta / 2, rel=1e-5, abs=1e-5)
                assert rect.get_y() == pytest.approx(g_y - 1 - N * delta / 2, rel=1e-5, abs=1e-5)
                assert rect.get_width() == pytest.approx(N * delta, rel=1e-5)
    frames.fig.clear()


def test_an_unknown_suffix_is_refused_with_the_supported_ones_named(recon, tmp_path):
    for name in ("draw.avi", "draw"):
        with pytest.raises(ValueError, match=r"\.gif.*\.mp4"):
            animation.save_animation(recon, tmp_path / name)
    assert list(tmp_path.iterdir()) == [], "nothing is written for a refused suffix"


def test_the_file_is_written_atomically_and_no_temporary_file_is_left(recon, tmp_path, monkeypatch):
    out = animation.save_animation(recon, tmp_path / "new" / "folder" / "draw.gif", hold=1)
    assert list(out.parent.iterdir()) == [out], "the parent is created and only the animation is left in it"

    # a write that fails half way leaves the old file as it was and no temporary file behind
    before = out.read_bytes()

    def broken(self, t):
        if t == 2:
            raise OSError("disk full")

    monkeypatch.setattr(animation._Frames, "update", broken)
    with pytest.raises(OSError, match="disk full"):
        animation.save_animation(recon, out)
    assert list(out.parent.iterdir()) == [out]
    assert out.read_bytes() == before


def test_an_mp4_is_written_with_ffmpeg_and_refused_clearly_without_it(recon, tmp_path):
    # one test, no skip: whichever machine runs it checks the behaviour that machine has
    if shutil.which("ffmpeg") is not None:
        out = animation.save_animation(recon, tmp_path / "draw.mp4", hold=2)
        assert out.stat().st_size > 0
        assert list(tmp_path.iterdir()) == [out]
    else:
        with pytest.raises(RuntimeError, match=r"(?s)install ffmpeg.*\.gif"):
            animation.save_animation(recon, tmp_path / "sub" / "draw.mp4")
        assert list(tmp_path.iterdir()) == [], "no folder and no file are made"


def test_importing_drawviz_does_not_load_the_animation_module():
    import subprocess
    import sys

    code = "import sys, drawviz; print('drawviz.animation' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
