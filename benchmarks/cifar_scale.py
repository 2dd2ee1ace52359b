"""Where a CIFAR-10 model's bits go: the shipped discretised-logistic model's bound split by what its
scale could do, on class-balanced test images (a model with a scale canvas: the scale it draws, s_T, in row (a)).

    python benchmarks/cifar_scale.py models/cifar10.pt --images 500 --out benchmarks/cifar

For the model's reconstruction c_T (one pass, ε from seed 0) it reports bits/dim of the likelihood term
under (a) the learned scale per subpixel, (b) the best single scale for all subpixels, (c) the best scale
for each image (an oracle that knows the image: what a scale written by the decoder could reach at most
with one number per image), (d) the best scale per image and subpixel class of brightness; beside them
the reconstruction's RMSE in intensity against the per-pixel mean image's, and the KL. If (c) is far
below (a), the likelihood's shared scale is what holds the bound up; if the RMSE is near the mean
image's, the latents carry too little and training (rate, time, free bits) is.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from drawviz import data
from drawviz.likelihood import logistic_nll
from drawviz.checkpoints import load_checkpoint, model_from_checkpoint


def bits(nll_nats: torch.Tensor, pixels: int) -> float:
    return float(nll_nats.mean()) / (pixels * math.log(2))


def best_scale(canvas, x, per_image: bool, grid=torch.linspace(-6, 2, 81)):
    """The log scale (one, or one per image) that minimises the logistic NLL, by a grid search."""
    scores = torch.stack([logistic_nll(canvas, x, g) for g in grid])  # (G, batch)
    return scores.min(0).values if per_image else scores[scores.mean(1).argmin()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--images", type=int, default=500)
    p.add_argument("--data-root")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    state = load_checkpoint(args.checkpoint)
    model = model_from_checkpoint(args.checkpoint, device="cpu", state=state)
    test = data.load("cifar10", "test", args.data_root)
    train = data.load("cifar10", "train", args.data_root, limit=10000)
    x = test.balanced(args.images, seed=0).images
    with torch.no_grad():
        out = model(x, generator=torch.Generator().manual_seed(0))
    c, pixels = out.canvas, model.config.pixels
    mean_image = train.images.mean(0, keepdim=True)
    rows = {
        # a model with a scale canvas (issue 33's arm) draws its scale per image and subpixel, s_T: its own bound
        ("drawn scale canvas s_T" if model.config.scale_canvas else "learned scale per subpixel"): bits(out.nll, pixels),
        "best single scale": bits(best_scale(c, x, False), pixels),
        "best scale per image (oracle)": bits(best_scale(c, x, True), pixels),
        "mean image, best single scale": bits(
            best_scale(torch.logit(mean_image.clamp(1e-3, 1 - 1e-3)).expand_as(x), x, False), pixels
        ),
    }
    rmse = float((torch.sigmoid(c) - x).pow(2).mean().sqrt())
    rmse_mean = float((mean_image - x).pow(2).mean().sqrt())
    kl = float(out.kl.sum(0).mean())
    report = {
        "checkpoint": args.checkpoint,
        "step": state["step"],
        "images": len(x),
        "bits_per_dim_of_the_likelihood_term": rows,
        "kl_nats": kl,
        "kl_bits_per_dim": kl / (pixels * math.log(2)),
        "rmse_reconstruction": rmse,
        "rmse_mean_image": rmse_mean,
        "learned_log_scale_median": float((model.s0 if model.config.scale_canvas else model.log_scale).detach().median()),
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"scale-{Path(args.checkpoint).stem}.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
