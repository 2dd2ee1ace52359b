"""Where a colour model's bits go (issue 33, step 2), measured on its test images before anything is changed:

- by spatial frequency: the reconstruction's squared error per radial band beside the images' own energy there
  (drawviz.sharpness.error_by_band): is it the fine detail or the colour and layout?
- by channel: the reconstruction term −log D(x | c_T) per colour channel, in bits/dim;
- by step: what each step buys (drawviz.comparisons.what_each_step_buys): its KL beside the drop in error;
- by latent unit: the KL of each unit of z, summed over steps: are the latents used?

A model with arms beyond the paper is measured against its own: the scale it draws (s_T) and its learned prior.

    python benchmarks/where_the_bits_go.py models/cifar10.pt --test-limit 500 --out benchmarks/where-the-bits-go

writes <out>/<model>.json (every table) and <out>/<model>.png (per step and per band), and prints a summary.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from drawviz import comparisons, data, likelihood, sharpness  # noqa: E402
from drawviz.checkpoints import load_checkpoint, model_from_checkpoint, settings_of  # noqa: E402
from drawviz.files import write_json  # noqa: E402
from drawviz.interventions import run_with_hooks  # noqa: E402

ACTIVE = 1.0  # nats: a unit whose KL summed over all steps is below this carries next to nothing per image
CARRY = 0.9  # and how many units carry this share of the whole KL


def measure(checkpoint: Path, data_root, n: int, seed: int = 0) -> dict:
    state = load_checkpoint(checkpoint)
    model = model_from_checkpoint(checkpoint, device="cpu", state=state)
    if model.config.likelihood != "logistic":
        raise SystemExit(f"{checkpoint}: a model of 8-bit values (likelihood logistic) is measured here")
    dataset = settings_of(state).get("dataset") or "cifar10"
    test = data.load(dataset, "test", data_root).balanced(n, seed=seed)
    x = test.images
    trace = run_with_hooks(model, x, seed=seed)  # per step, measured: recon_nll, kl, mu, sigma_z (T, batch, ...)
    # the logistic's log-scale: the learned one, or s_T where the model draws it (DrawConfig.scale_canvas; the trace's ε
    # is the pass's below)
    log_scale = torch.from_numpy(trace["scale_canvas"][-1]) if model.config.scale_canvas else model.log_scale.detach()
    with torch.no_grad():
        out = model(x, model.sample_eps(len(x), torch.Generator().manual_seed(seed)), check=False)
        per_value = -likelihood.log_bin_mass(out.canvas, x, log_scale)  # (batch, C, H, W) nats
    C, H, W = model.config.image_shape
    dims = C * H * W
    channels = {
        name: float(per_value[:, c].sum((1, 2)).mean() / (H * W * math.log(2)))
        for c, name in enumerate(("red", "green", "blue") if C == 3 else [f"channel {c}" for c in range(C)])
    }
    bands = sharpness.error_by_band(x, out.canvas.sigmoid())
    by_band = bands.groupby(["band", "low", "high"], as_index=False)[["error_energy", "image_energy"]].sum()
    by_band = by_band.sort_values("low", ignore_index=True)
    by_band["error_share"] = by_band["error_energy"] / by_band["error_energy"].sum()
    by_band["image_share"] = by_band["image_energy"] / by_band["image_energy"].sum()
    steps = comparisons.what_each_step_buys(model, x, trace=trace)
    mu, sigma = trace.mu.astype(np.float64), trace.sigma_z.astype(np.float64)  # (T, batch, z)
    mu_p, sigma_p = 0.0, 1.0  # the paper's prior N(0, I), or a learned one's per step (DrawConfig.prior)
    if model.config.prior == "learned":
        mu_p, sigma_p = trace["mu_prior"].astype(np.float64), trace["sigma_prior"].astype(np.float64)
    kl_unit = (np.log(sigma_p / sigma) + (sigma**2 + (mu - mu_p) ** 2) / (2 * sigma_p**2) - 0.5).sum(0).mean(0)  # (z,) nats
    recon = float(out.nll.mean() / (dims * math.log(2)))
    kl = float(out.kl.sum(0).mean() / (dims * math.log(2)))
    return {
        "model": str(checkpoint),
        "dataset": dataset,
        "test_images": len(x),
        "source": data.portable(test.source, data_root),
        "bits_per_dim": recon + kl,
        "reconstruction_bits_per_dim": recon,
        "kl_bits_per_dim": kl,
        "channels_bits_per_dim": channels,
        "bands": by_band.to_dict(orient="records"),
        "steps": steps.to_dict(orient="records"),
        "kl_per_unit_nats": kl_unit.tolist(),
        "active_units": int((kl_unit > ACTIVE).sum()),
        "units_carrying_90_percent": int(np.searchsorted(np.cumsum(np.sort(kl_unit)[::-1]) / kl_unit.sum(), CARRY) + 1),
        "units": int(kl_unit.size),
        "log_scale_mean": float(log_scale.mean()),  # s_T's over the images, for a drawn scale
        "arms": model.config.beyond_paper(),
    }


def figure(m: dict):
    import matplotlib.pyplot as plt
    import pandas as pd

    steps, bands = pd.DataFrame(m["steps"]), pd.DataFrame(m["bands"])
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(14, 3.8), layout="constrained")
    a.plot(steps["step"], steps["kl_bits"], label="KL of the step (bits)")
    a.plot(steps["step"], steps["error_drop_bits"], label="drop in reconstruction error (bits)")
    a.set(xlabel="step t", ylabel="bits per image", yscale="log", title="what each step buys")
    a.legend(frameon=False, fontsize=8)
    labels = [f"{lo:.3g}–{hi:.3g}" for lo, hi in zip(bands["low"], bands["high"])]
    pos = np.arange(len(bands))
    b.bar(pos - 0.2, bands["error_share"], 0.4, label="share of the squared error")
    b.bar(pos + 0.2, bands["image_share"], 0.4, label="share of the images' energy")
    b.set(xticks=pos, xticklabels=labels, xlabel="radial frequency band (× Nyquist)", title="error by frequency")
    b.legend(frameon=False, fontsize=8)
    kl = np.sort(np.asarray(m["kl_per_unit_nats"]))[::-1]
    c.bar(np.arange(len(kl)), kl, width=1.0)
    carry = f"{m['units_carrying_90_percent']} of {m['units']} units carry 90 % of the KL"
    c.set(xlabel="latent unit (sorted)", ylabel="KL over all steps (nats)", title=carry)
    fig.suptitle(f"where the bits go: {Path(m['model']).name} on {m['test_images']} {m['dataset']} test images", fontsize=10)
    return fig


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--data-root", default=os.environ.get("DRAWVIZ_DATA"))
    p.add_argument("--test-limit", type=int, default=500)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "where-the-bits-go")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    tick = time.perf_counter()
    m = measure(args.checkpoint, args.data_root, args.test_limit)
    m["seconds"] = round(time.perf_counter() - tick, 1)
    name = args.checkpoint.stem
    write_json(args.out / f"{name}.json", m)
    figure(m).savefig(args.out / f"{name}.png", dpi=110)
    top = m["bands"][-1]
    low = m["bands"][0]
    print(
        f"{name}: {m['bits_per_dim']:.3f} bits/dim on {m['test_images']} test images "
        f"(reconstruction {m['reconstruction_bits_per_dim']:.3f} + KL {m['kl_bits_per_dim']:.3f})\n"
        f"  channels: " + ", ".join(f"{k} {v:.3f}" for k, v in m["channels_bits_per_dim"].items()) + " bits/dim\n"
        f"  error in the top band ({top['low']:.3g}–{top['high']:.3g} Nyquist): {100 * top['error_share']:.1f} % "
        f"(the images' energy there: {100 * top['image_share']:.1f} %); lowest band: {100 * low['error_share']:.1f} % "
        f"({100 * low['image_share']:.1f} %)\n"
        f"  latent units with KL > {ACTIVE:g} nat over all steps: {m['active_units']} of {m['units']}; "
        f"{m['units_carrying_90_percent']} carry {100 * CARRY:.0f} % of the KL\n"
        f"  wrote {args.out / name}.json and .png in {m['seconds']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
