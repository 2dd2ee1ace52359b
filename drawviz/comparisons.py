"""The comparisons DRAW invites, measured with interventions (drawviz.interventions).

* ``what_each_step_buys``: per step, the KL it costs (bits) beside the drop in reconstruction error
  −log D(x | c_t) it brings (eq. 9-11 step by step);
* ``intervention_effects``: a table of interventions at step t, one measured effect each (move the
  read window off the image, freeze the write window, zero a write, swap z with another image's, draw
  from the prior with the same ε);
* ``one_shot_vs_draw``: DRAW with and without attention beside a plain VAE (T = 1, no attention):
  NLL bound, sharpness, and how much of the image one step changes (edit area).
"""

from __future__ import annotations

import math
from typing import Mapping, Optional

import numpy as np
import pandas as pd
import torch

from . import data as _data
from . import sharpness
from .kinds import lacks
from .interventions import final_error, freeze_window, run_with_hooks, scale_gamma, set_window, set_z, zero_write
from .trace import Trace

__all__ = ["what_each_step_buys", "intervention_effects", "swap_z", "one_shot_vs_draw", "figure_steps"]


def figure_steps(T: int, step: int, columns: int = 6) -> list[int]:
    """Steps to show around an intervention at ``step``: the one before, the step itself, then spread to T."""
    later = np.linspace(step, T, max(columns - 1, 2)).round().astype(int).tolist()
    return sorted({max(step - 1, 1), *later})


def _initial_error(model, x: torch.Tensor) -> np.ndarray:
    """−log D(x | c_0) per image: the error before the first step (the learned c_0, and s_0 with a scale canvas)."""
    scale = model.initial_scale(x.shape[0]) if getattr(model.config, "scale_canvas", False) else None
    with torch.no_grad():
        c0 = model.c0.expand(x.shape[0], *model.config.image_shape)
        return model.nll(c0, x, *([] if scale is None else [scale])).float().cpu().numpy()


def what_each_step_buys(model, x: torch.Tensor, *, seed: int = 0, trace: Optional[Trace] = None) -> pd.DataFrame:
    """One row per step t: mean KL_t in bits, mean reconstruction error −log D(x | c_t) in bits, and the
    drop in that error step t brings (bits); ``bits_per_bit`` = drop / KL, what a bit of z buys.

    x should already be binarised for a Bernoulli model (the figures' test images are)."""
    trace = trace if trace is not None else run_with_hooks(model, x, seed=seed)
    before = np.concatenate([_initial_error(model, x.to(model.c0.device))[None], trace.recon_nll])  # (T+1, batch)
    before = before.astype(np.float64)  # float32 rounding noise would show in the tables
    drop = (before[:-1] - before[1:]).mean(1) / math.log(2)
    kl = trace.kl.astype(np.float64).mean(1) / math.log(2)
    return pd.DataFrame(
        {
            "step": np.arange(1, trace.T + 1),
            "kl_bits": kl,
            "error_bits": before[1:].mean(1) / math.log(2),
            "error_drop_bits": drop,
            "bits_per_bit": np.divide(drop, kl, out=np.full_like(drop, np.nan), where=kl > 1e-6),
        }
    )


def swap_z(model, x: torch.Tensor, steps, *, seed: int = 0, target=None) -> tuple[Trace, Trace]:
    """Reconstruct x with z_t at ``steps`` taken from the next image's reconstruction (image i gets image
    i+1's, the last gets the first's), the same ε. Returns (plain, swapped); target as in run_with_hooks."""
    plain = run_with_hooks(model, x, seed=seed, target=target)
    partner = torch.from_numpy(np.roll(plain.z, -1, axis=1))  # (T, batch, z): image i+1's z at index i
    steps = [steps] if isinstance(steps, int) else list(steps)
    swapped = run_with_hooks(model, x, hooks=[set_z({t: partner[t - 1] for t in steps})], seed=seed, target=target)
    return plain, swapped


def intervention_effects(model, x: torch.Tensor, step: int, *, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Interventions at step ``step`` with one measured effect each (nats per image, mean over x).

    Returns (table, traces): the table has columns intervention, effect, value, unit; traces maps each
    intervention to its Trace (and "plain" to the unhooked run) for figures."""
    c = model.config
    if not 1 <= step <= c.T:
        raise ValueError(f"step must be in 1..T = 1..{c.T}, got {step}")
    if x.shape[0] < 2:  # the z swap pairs each image with the next: one image would be swapped with itself
        raise ValueError(
            f"intervention_effects needs at least 2 images (the z swap pairs image i with image i+1), got {x.shape[0]}"
        )
    plain = run_with_hooks(model, x, seed=seed)
    base = final_error(plain)
    rows, traces = [], {"plain": plain}

    def effect(name: str, hooks, what: str = "final error −log D(x | c_T) change"):
        trace = run_with_hooks(model, x, hooks=hooks, seed=seed)
        traces[name] = trace
        rows.append({"intervention": name, "effect": what, "value": final_error(trace) - base, "unit": "nats"})

    if c.attention:
        # a corner outside the image: the glimpse holds (almost) nothing of x there
        effect(
            f"read window moved off the image at step {step}",
            [set_window("read", step, g_x=-float(c.width), g_y=-float(c.height))],
        )
        effect(f"write window frozen from step {step} (attention off)", [freeze_window("write", step)])
        effect(f"write intensity 1/γ doubled at step {step}", [scale_gamma("write", 0.5, step)])
    if lacks(model, "zero write", "write_patch") is None:  # a one-shot VAE (convvae) writes no patches to zero
        effect(f"nothing written at step {step}", [zero_write(step)])
    partner = torch.roll(x, -1, 0)  # image i's partner is image i+1
    plain_swap, swapped = swap_z(model, x, range(step, c.T + 1), seed=seed, target=partner)
    traces[f"z swapped with the next image's from step {step}"] = swapped
    rows.append(
        {
            "intervention": f"z swapped with the next image's from step {step}",
            "effect": "error against the next image −log D(x_next | c_T) change",
            "value": final_error(swapped) - final_error(plain_swap),
            "unit": "nats",
        }
    )
    # the plain run is the posterior half already (the same seed draws the same ε): only the prior half is new
    eps = model.sample_eps(x.shape[0], torch.Generator(model.c0.device).manual_seed(seed))
    sample = run_with_hooks(model, n=x.shape[0], eps=eps, target=x)
    traces["prior, same ε"] = sample
    rows.append(
        {
            "intervention": "z from the prior instead of the posterior (same ε)",
            "effect": "final error −log D(x | c_T) change",
            "value": final_error(sample) - base,
            "unit": "nats",
        }
    )
    return pd.DataFrame(rows), traces


def one_shot_vs_draw(
    models: Mapping[str, object], images: torch.Tensor, *, binarize: bool = True, seed: int = 0, samples: int = 64
) -> pd.DataFrame:
    """DRAW with and without attention beside a one-shot VAE (T = 1): one row per model.

    images: test intensities in [0, 1]; with ``binarize`` (greyscale data) the NLL bound and the drawing
    measures use them binarised with ``seed``, as the test bound does, and sharpness compares with the
    intensities, as the blur page does.
    Columns: T, attention, NLL bound and KL on these images (nats), sample and reconstruction sharpness
    (variance of the Laplacian as a ratio to the test images'), and the edit area: the median share of
    pixels that receives 90 % of a step's canvas change (after the first 10 % of steps; a one-shot
    model's single step changes the image everywhere at once)."""
    x = _data.binarize(images, seed=seed) if binarize else images
    rows = []
    for name, model in models.items():
        c = model.config
        trace = run_with_hooks(model, x, seed=seed)
        sets, _ = sharpness.blur_measurements(model, images[:samples], seed=seed)
        ratios = sharpness.ratios(sharpness.summary(sets))
        first = int(math.floor(0.1 * c.T))
        rows.append(
            {
                "model": name,
                "T": c.T,
                "attention": c.attention,
                "NLL bound, nats": float(np.mean(trace.recon_nll[-1] + trace.kl.sum(0))),
                "KL, nats": float(trace.kl.sum(0).mean()),
                "samples / test Laplacian var.": ratios.get("samples/laplacian_variance"),
                "recon. / test Laplacian var.": ratios.get("reconstructions/laplacian_variance"),
                "edit area of a step": float(np.median(trace.edit_area[first:])),
            }
        )
    return pd.DataFrame(rows).set_index("model")
