"""How sharp are images? Two blur measures, per image and per drawing step, and where in spatial
frequency a reconstruction's error lies.

DRAW's samples are known to be blurry (the Bernoulli mean σ(c_T) averages over strokes the
model is unsure of). Two simple numbers make that comparable across datasets:

- ``laplacian_variance``: the variance of the 4-neighbour Laplacian of the grey image;
  edges make it large, blur makes it small.
- ``high_frequency_share``: the share of spectral energy (DC removed) above a radial
  frequency of ``cutoff`` × Nyquist, i.e. in fine detail.

Images are (..., C, H, W) in [0, 1]; colour is reduced to grey with Rec. 601 luma weights.

``error_by_band`` asks the same question of a reconstruction x̂ of x, per colour channel: is the
squared error ‖x − x̂‖² in the fine detail (a blurry reconstruction) or in the colour and layout
(the lowest frequencies, DC included)? The error's 2-D spectrum is split into radial bands of
spatial frequency (fractions of Nyquist, as ``high_frequency_share``'s cutoff); by Parseval the
bands' energies add up to the total squared error, and the image's own energy per band is given
beside them.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

__all__ = [
    "disagreements",
    "grey",
    "laplacian_variance",
    "high_frequency_share",
    "measure",
    "per_step",
    "summary",
    "ratios",
    "blur_measurements",
    "BANDS",
    "error_by_band",
]

MEASURES = ("laplacian_variance", "high_frequency_share")
BANDS = (0.0, 1 / 8, 1 / 4, 1 / 2, 1.0)  # edges, fractions of Nyquist; the last band also takes the corners (to √2)


def _numpy(images) -> np.ndarray:
    if hasattr(images, "detach"):  # a torch tensor
        images = images.detach().cpu().numpy()
    return np.asarray(images, dtype=np.float64)


def grey(images) -> np.ndarray:
    """(..., C, H, W) -> (..., H, W): identity for one channel, luma for RGB, mean otherwise."""
    x = _numpy(images)
    if x.ndim < 3:
        raise ValueError(f"expected images of shape (..., C, H, W), got {x.shape}")
    if x.shape[-3] == 3:
        return np.tensordot(x, np.array([0.299, 0.587, 0.114]), axes=([-3], [0]))
    return x.mean(-3)


def laplacian_variance(images) -> np.ndarray:
    """Variance of the discrete Laplacian over the image interior, one value per image: shape (...)."""
    return _laplacian_variance(grey(images))


def high_frequency_share(images, cutoff: float = 0.5) -> np.ndarray:
    """Share of spectral energy above ``cutoff`` × Nyquist (radially), DC excluded: shape (...), in [0, 1]."""
    return _high_frequency_share(grey(images), cutoff)


def _measures(images) -> dict[str, np.ndarray]:
    """Both measures, from one greyscale conversion."""
    g = grey(images)
    return {"laplacian_variance": _laplacian_variance(g), "high_frequency_share": _high_frequency_share(g)}


def _laplacian_variance(g: np.ndarray) -> np.ndarray:
    lap = (
        g[..., :-2, 1:-1] + g[..., 2:, 1:-1] + g[..., 1:-1, :-2] + g[..., 1:-1, 2:] - 4 * g[..., 1:-1, 1:-1]
    )  # valid region only: no invented border pixels
    return lap.reshape(*lap.shape[:-2], -1).var(-1)


def _high_frequency_share(g: np.ndarray, cutoff: float = 0.5) -> np.ndarray:
    g = g - g.mean(axis=(-2, -1), keepdims=True)  # drop DC: the mean brightness is not detail
    power = np.abs(np.fft.fft2(g)) ** 2
    fy = np.fft.fftfreq(g.shape[-2])[:, None]  # cycles per pixel; Nyquist is 0.5
    fx = np.fft.fftfreq(g.shape[-1])[None, :]
    high = np.hypot(fx, fy) > cutoff * 0.5
    total = power.sum(axis=(-2, -1))
    share = (power * high).sum(axis=(-2, -1)) / np.where(total > 0, total, 1.0)
    return np.where(total > 0, share, 0.0)  # a flat image has no detail at all


def measure(images) -> pd.DataFrame:
    """Both measures for a batch (N, C, H, W): one row per image."""
    return pd.DataFrame({"image": np.arange(len(images)), **_measures(images)})


def per_step(canvas, source: str = "") -> pd.DataFrame:
    """Both measures of σ(c_t) for every step: canvas (T, B, C, H, W) -> rows (source, step 1..T, image)."""
    c = _numpy(canvas)
    T, B = c.shape[:2]
    step, image = np.meshgrid(np.arange(1, T + 1), np.arange(B), indexing="ij")
    return pd.DataFrame(
        {"source": source, "step": step.ravel(), "image": image.ravel(), **{k: v.ravel() for k, v in _measures(c).items()}}
    )


def summary(sets: Mapping[str, object]) -> pd.DataFrame:
    """Mean and standard error of both measures for named image sets {name: (N, C, H, W)}."""
    rows = []
    for name, images in sets.items():
        m = measure(images)
        row = {"images": name, "n": len(m)}
        for k in MEASURES:
            row[k] = m[k].mean()
            row[f"{k}_se"] = m[k].std(ddof=1) / np.sqrt(len(m)) if len(m) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows).set_index("images")


def ratios(table: pd.DataFrame, reference: str = "test images") -> dict:
    """Each set's mean measure over the reference set's: {"samples/laplacian_variance": 0.4, ...}.

    Below 1 means blurrier than the data.
    """
    ref = table.loc[reference]
    return {
        f"{name}/{k}": float(table.loc[name, k] / ref[k]) if ref[k] else float("nan")
        for name in table.index
        if name != reference
        for k in MEASURES
    }


def blur_measurements(model, images, *, seed: int = 0):
    """Reconstructions and prior samples of a model beside its test images, measured.

    images: (n, C, H, W) test images in [0, 1] (intensities, not binarised: the reference is
    the data as it looks). Returns (sets, steps): sets = {"test images", "reconstructions",
    "samples"} final images (n, C, H, W) as numpy; steps = per-step measures of σ(c_t) for
    reconstructions and samples (sources named so).
    """
    import torch

    device = next(model.parameters()).device
    x = images.to(device)
    g = torch.Generator(device).manual_seed(seed)
    recon = model.reconstruct(x, generator=g).cpu().numpy()  # (T, n, C, H, W)
    samples = model.generate(len(x), generator=g).cpu().numpy()
    sets = {"test images": images.cpu().numpy(), "reconstructions": recon[-1], "samples": samples[-1]}
    steps = pd.concat([per_step(recon, "reconstructions"), per_step(samples, "samples")], ignore_index=True)
    return sets, steps


def disagreements(ratios_by_dataset: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Where the two measures tell different stories, in words (empty when they agree).

    ratios_by_dataset: {dataset: ratios(table)}. Two checks: a set that one measure calls sharper
    than the data and the other blurrier; and datasets ranked differently by the two measures.
    """
    from .text import markdown_text  # run names are users' (a runs file, papermill -p): shown as text, never markup

    notes = []
    lap, hf = MEASURES
    ratios_by_dataset = {markdown_text(name): r for name, r in ratios_by_dataset.items()}
    for name, r in ratios_by_dataset.items():
        for kind in ("reconstructions", "samples"):
            a, b = r.get(f"{kind}/{lap}"), r.get(f"{kind}/{hf}")
            if a is not None and b is not None and (a - 1) * (b - 1) < 0:
                notes.append(
                    f"{name} {kind}: the Laplacian variance ratio is {a:.2f} but the high-frequency share "
                    f"ratio {b:.2f} (one calls them sharper than the data, the other blurrier)"
                )
    names = list(ratios_by_dataset)
    if len(names) > 1:
        for kind in ("reconstructions", "samples"):
            rank = {m: sorted(names, key=lambda n: ratios_by_dataset[n].get(f"{kind}/{m}", np.nan)) for m in MEASURES}
            if rank[lap] != rank[hf]:
                notes.append(
                    f"{kind}, from blurriest to sharpest relative to their data: {' < '.join(rank[lap])} "
                    f"by the Laplacian variance, but {' < '.join(rank[hf])} by the high-frequency share"
                )
    return notes


def _radius(H: int, W: int) -> np.ndarray:
    """Radial frequency of each 2-D FFT bin as a fraction of Nyquist: (H, W), 0 at DC, up to √2 at the corners."""
    fy = np.fft.fftfreq(H)[:, None]  # cycles per pixel; Nyquist is 0.5
    fx = np.fft.fftfreq(W)[None, :]
    return np.hypot(fx, fy) / 0.5


def _label(v: float) -> str:
    from fractions import Fraction

    f = Fraction(v).limit_denominator(64)
    return str(f) if abs(float(f) - v) < 1e-9 else f"{v:.3g}"


def error_by_band(x, x_hat, bands=BANDS, *, batch: int = 1024) -> pd.DataFrame:
    """The squared error x − x̂ by radial spatial-frequency band and channel, beside the image's own energy there.

    x, x_hat: (N, C, H, W) (or (C, H, W)), any scale. bands: increasing edges in fractions of Nyquist, from 0;
    band i is [bands[i], bands[i+1]), and the last band also takes every frequency above its lower edge (the
    spectrum's corners reach √2 × Nyquist radially), so every FFT bin is in exactly one band and its ``high`` is
    the larger of its edge and the highest radius present.

    One row per (band, channel): band (its label), low, high, channel (0-based), error_energy (Σ over images and
    pixels of the band's part of x − x̂, squared; by Parseval, Σ|FFT|² / (H W) over the band's bins), share (of the
    total squared error over all bands and channels: the shares sum to 1), image_energy and image_share (the same
    for x itself, DC included: the lowest band holds the mean colour).
    """
    x, x_hat = _numpy(x), _numpy(x_hat)
    if x.shape != x_hat.shape or x.ndim not in (3, 4):
        raise ValueError(f"expected x and x_hat of one shape (N, C, H, W), got {x.shape} and {x_hat.shape}")
    if x.ndim == 3:
        x, x_hat = x[None], x_hat[None]
    edges = np.asarray(bands, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or edges[0] != 0 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"bands must be increasing edges from 0 (fractions of Nyquist), e.g. {BANDS}; got {bands}")
    N, C, H, W = x.shape
    r = _radius(H, W)  # (H, W)
    which = np.minimum(np.searchsorted(edges, r, side="right") - 1, len(edges) - 2)  # (H, W): band of each bin
    onehot = np.eye(len(edges) - 1)[which.ravel()]  # (H W, bands)
    error = np.zeros((C, len(edges) - 1))  # Σ over images, per channel and band
    image = np.zeros((C, len(edges) - 1))
    for i in range(0, N, batch):
        for total, signal in ((error, x[i : i + batch] - x_hat[i : i + batch]), (image, x[i : i + batch])):
            power = np.abs(np.fft.fft2(signal)) ** 2 / (H * W)  # (B, C, H, W); Parseval: Σ power = Σ signal²
            total += power.reshape(len(signal), C, H * W).sum(0) @ onehot
    highs = edges[1:].copy()
    highs[-1] = max(highs[-1], float(r.max()))
    rows = [
        {
            "band": f"[{_label(lo)}, {_label(hi)}{']' if b == len(highs) - 1 else ')'}",
            "low": lo,
            "high": hi,
            "channel": c,
            "error_energy": error[c, b],
            "image_energy": image[c, b],
        }
        for b, (lo, hi) in enumerate(zip(edges[:-1], highs))
        for c in range(C)
    ]
    table = pd.DataFrame(rows)
    for col, share in (("error_energy", "share"), ("image_energy", "image_share")):
        total = table[col].sum()
        table[share] = table[col] / total if total > 0 else 0.0  # no error at all: no share anywhere
    return table[["band", "low", "high", "channel", "error_energy", "share", "image_energy", "image_share"]]
