"""Section 3 of the paper: the filterbank, read and write."""

import math

import pytest
import torch

from drawviz.model import DRAW, DrawConfig
from drawviz.attention import Read, Write, filterbank, window_from_params


@pytest.fixture(autouse=True)
def float64():
    """Exact comparisons below; restored afterwards so other modules keep float32."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def one(*values):
    return torch.tensor(values, dtype=torch.float64)


@pytest.mark.parametrize("N", [1, 2, 3, 5, 12])
def test_filters_of_a_centred_grid_are_symmetric(N):
    A, B = 28, 28
    g = one((A + 1) / 2)
    F_x, F_y = filterbank(g, g, one(1.7), one(2.3), N, A, B)
    # filter i over pixel a mirrors filter N+1-i over pixel A+1-a
    assert torch.allclose(F_x, F_x.flip(1).flip(2), atol=1e-12)
    assert torch.allclose(F_y, F_y.flip(1).flip(2), atol=1e-12)


def test_rows_sum_to_one():
    g_x, g_y = one(3.0, 14.5, 27.0), one(20.0, 1.0, 10.0)
    F_x, F_y = filterbank(g_x, g_y, one(0.3, 2.0, 9.0), one(0.5, 3.0, 1.0), 5, 28, 20)
    assert F_x.shape == (3, 5, 28) and F_y.shape == (3, 5, 20)
    assert torch.allclose(F_x.sum(-1), torch.ones(3, 5))
    assert torch.allclose(F_y.sum(-1), torch.ones(3, 5))


def test_filter_centres_sit_at_g_plus_i_minus_N_over_2_minus_half_delta():
    N, delta, g = 4, 2.0, 14.5
    F_x, _ = filterbank(one(g), one(g), one(1.0), one(delta), N, 28, 28)
    a = torch.arange(1, 29, dtype=torch.float64)
    centres = (F_x[0] * a).sum(-1)  # each filter's mean position, in 1-based pixels
    expected = torch.tensor([g + (i - N / 2 - 0.5) * delta for i in range(1, N + 1)])
    assert torch.allclose(centres, expected, atol=1e-6), centres  # [11.5, 13.5, 15.5, 17.5]


@pytest.mark.parametrize("N", [2, 5, 12])
def test_at_zero_offset_and_unit_stride_the_outer_centres_sit_on_pixels_1_and_A(N):
    A = B = 28
    # (g̃_X, g̃_Y, log σ², log δ̃, log γ) = (0, 0, very small, 0, 0)
    window = window_from_params(one(0.0, 0.0, -12.0, 0.0, 0.0)[None], N, A, B)
    assert window.g_x.item() == pytest.approx((A + 1) / 2)
    F_x, _ = filterbank(*[getattr(window, k) for k in ("g_x", "g_y", "sigma2", "delta")], N, A, B)
    peak = F_x[0].argmax(-1) + 1  # back to 1-based pixel coordinates
    assert peak[0].item() == 1 and peak[-1].item() == A
    assert F_x[0, 0, 0].item() == pytest.approx(1.0) and F_x[0, -1, -1].item() == pytest.approx(1.0)


def test_sigma2_is_a_variance_used_once():
    # F[a] ∝ exp(−(a − μ)² / 2σ²): with σ² = 4 the neighbour two pixels away has ratio e^(−1/2)
    F_x, _ = filterbank(one(10.0), one(10.0), one(4.0), one(1.0), 1, 28, 28)
    assert (F_x[0, 0, 11] / F_x[0, 0, 9]).item() == pytest.approx(math.exp(-4 / 8))


def test_filterbank_matches_a_slow_loop():
    torch.manual_seed(1)
    n, N, A, B = 3, 4, 9, 7
    g_x, g_y = torch.rand(n) * A, torch.rand(n) * B
    sigma2, delta = torch.rand(n) + 0.3, torch.rand(n) * 2 + 0.2
    F_x, F_y = filterbank(g_x, g_y, sigma2, delta, N, A, B)
    for b in range(n):
        for F, g, size in ((F_x, g_x, A), (F_y, g_y, B)):
            for i in range(1, N + 1):
                mu = g[b].item() + (i - N / 2 - 0.5) * delta[b].item()
                row = [math.exp(-((a - mu) ** 2) / (2 * sigma2[b].item())) for a in range(1, size + 1)]
                total = sum(row)
                for a in range(size):
                    assert F[b, i - 1, a].item() == pytest.approx(row[a] / total, rel=1e-9, abs=1e-12)


def test_N_below_one_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="N >= 1"):
        filterbank(one(1.0), one(1.0), one(1.0), one(1.0), 0, 5, 5)
    with pytest.raises(ValueError, match="read_n"):
        DrawConfig(read_n=0)


def _same_window(read: Read, write: Write, gamma_one=True):
    write.params.load_state_dict(read.params.state_dict())
    if gamma_one:  # log γ = 0 for every h_dec
        with torch.no_grad():
            for layer in (read.params, write.params):
                layer.weight[4].zero_()
                layer.bias[4] = 0.0


def test_write_is_the_transpose_of_read_when_gamma_is_one():
    torch.manual_seed(2)
    C, H, W, N, dec = 3, 11, 13, 4, 8
    read, write = Read(dec, N, W, H), Write(dec, N, W, H, C)
    _same_window(read, write)
    h = torch.randn(5, dec)
    x = torch.rand(5, C, H, W)
    _, _, glimpse = read(x, torch.zeros_like(x), h)
    update, window, w = write(h)
    assert torch.allclose(window.gamma, torch.ones(5))
    # <read(x), w> = <x, write(w)> for every image: write is the adjoint (transpose) of read
    lhs = (glimpse[:, 0] * w).flatten(1).sum(1)
    rhs = (x * update).flatten(1).sum(1)
    assert torch.allclose(lhs, rhs, rtol=1e-10)


def test_read_scales_by_gamma_and_write_divides_by_it():
    torch.manual_seed(3)
    read, write = Read(6, 3, 10, 10), Write(6, 3, 10, 10, 1)
    _same_window(read, write)
    h, x = torch.randn(2, 6), torch.rand(2, 1, 10, 10)
    base_read, base_write = read(x, x, h)[2], write(h)[0]
    with torch.no_grad():
        read.params.bias[4] = math.log(2.0)
        write.params.bias[4] = math.log(2.0)
    assert torch.allclose(read(x, x, h)[2], 2 * base_read)
    assert torch.allclose(write(h)[0], base_write / 2)


def test_read_and_write_have_separate_parameters():
    model = DRAW(DrawConfig(T=2))
    read_ids = {id(p) for p in model.read.parameters()}
    write_ids = {id(p) for p in model.write.parameters()}
    assert read_ids and write_ids and not read_ids & write_ids
    assert model.read.params is not model.write.params
    # moving the write window leaves the read window where it was
    h = torch.randn(4, 256)
    before = model.read.window(h)
    with torch.no_grad():
        model.write.params.bias.add_(1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.read.window(h)))


def test_moving_g_y_moves_a_colour_read_vertically():
    C, H, W, N = 3, 32, 32, 3
    read = Read(1, N, W, H)
    x = torch.zeros(1, C, H, W)
    x[0, 2, 4:7, :] = 1.0  # a blue stripe near the top, in the third channel only
    h = torch.zeros(1, 1)

    def glimpse_at(g_y_tilde):
        with torch.no_grad():
            read.params.weight.zero_()
            read.params.bias.copy_(torch.tensor([0.0, g_y_tilde, 0.0, math.log(0.1), 0.0]))
        return read(x, x, h)[2][0, 0]  # (C, N, N) glimpse of x

    top, bottom = glimpse_at(-0.67), glimpse_at(0.67)  # g_y ≈ 5.8 and ≈ 27.2
    assert top[2].sum() > 1.0 and bottom[2].sum() < 1e-3
    assert top[:2].abs().max() == 0 and bottom[:2].abs().max() == 0  # same filters per channel, no bleed
