"""The test NLL bound: the negative ELBO on a test set, reproducible (fixed binarisation and ε)."""

from __future__ import annotations

import math

import torch

from . import data as _data
from .model import DRAW, bits_per_dim, check_images
from .checks import positive_int

__all__ = ["evaluate", "TrainingDiverged"]


class TrainingDiverged(RuntimeError):
    """The loss or the gradients became NaN/inf; the last good checkpoint is kept."""


def _as_images(images) -> torch.Tensor:
    return images.images if isinstance(images, _data.ImageSet) else images


@torch.no_grad()
def evaluate(
    model: DRAW,
    images: torch.Tensor | _data.ImageSet,
    *,
    batch_size: int = 500,
    seed: int = 0,
    binarize: bool = False,
    progress: bool = False,
) -> dict:
    """The test negative ELBO, an upper bound on −log p(x), in nats per image (and bits/dim).

    binarize=True binarises the images first with a fixed seed (the static benchmark set).
    The noise ε is drawn from ``seed`` too, so the figure is reproducible.
    """
    batch_size = positive_int(batch_size, "batch_size", "a number of images per pass")
    images = _as_images(images)
    check_images(images, model.config)
    if binarize:
        images = _data.binarize(images, seed=seed)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    g = torch.Generator(device).manual_seed(seed)
    totals = torch.zeros(3, dtype=torch.float64)
    chunks = range(0, images.shape[0], batch_size)
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc="evaluate", unit="batch", leave=False)
    for i in chunks:
        x = images[i : i + batch_size].to(device)
        out = model(x, generator=g, check=False)
        totals += torch.stack([(out.nll + out.kl.sum(0)).sum(), out.nll.sum(), out.kl.sum()]).double().cpu()
    model.train(was_training)
    n = images.shape[0]
    bound, nll, kl = (totals / n).tolist()
    if not math.isfinite(bound):
        raise TrainingDiverged(
            f"the test bound is {bound} (reconstruction {nll}, KL {kl}): the model's outputs are "
            "not finite (NaN or inf weights?); evaluate an earlier checkpoint"
        )
    return {"nll_bound": bound, "bits_per_dim": bits_per_dim(bound, model.config), "recon_nll": nll, "kl": kl, "images": n}
