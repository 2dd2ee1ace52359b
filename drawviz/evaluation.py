"""The test NLL bound: the negative ELBO on a test set, reproducible (fixed binarisation and ε)."""

from __future__ import annotations

import math

import torch

from . import data as _data
from . import kinds as _kinds
from .model import bits_per_dim, check_images
from .checks import positive_int

__all__ = ["evaluate", "TrainingDiverged"]


class TrainingDiverged(RuntimeError):
    """The loss or the gradients became NaN/inf; the last good checkpoint is kept."""


def _as_images(images) -> torch.Tensor:
    return images.images if isinstance(images, _data.ImageSet) else images


def _as_labels(images, labels, field: str = "labels") -> torch.Tensor | None:
    """The labels given, else an ImageSet's own: its ``field`` (a captioned model's labels are the captions)."""
    if labels is None and isinstance(images, _data.ImageSet):
        return getattr(images, field)
    return labels


def labels_from(model) -> str:
    """The ImageSet field a model's kind learns from (kinds: ``labels_from`` of its config)."""
    return getattr(model.config, "labels_from", "labels")


@torch.no_grad()
def evaluate(
    model,
    images: torch.Tensor | _data.ImageSet,
    *,
    labels: torch.Tensor | None = None,
    batch_size: int = 500,
    seed: int = 0,
    binarize: bool = False,
    progress: bool = False,
) -> dict:
    """A model's test figures, reproducibly: what its kind reports (``model.figures``), averaged per image.

    DRAW: the test negative ELBO, an upper bound on −log p(x), in nats per image (``nll_bound``, with
    ``bits_per_dim``, ``recon_nll`` and ``kl``). The classifier: ``error`` (a fraction) and ``cross_entropy``
    (nats; also as ``nll_bound``, −log p(y | x)); its labels come from the ImageSet or ``labels``.
    binarize=True binarises the images first with a fixed seed (the static benchmark set).
    The noise ε is drawn from ``seed`` too, so the figure is reproducible.
    """
    batch_size = positive_int(batch_size, "batch_size", "a number of images per pass")
    kind = _kinds.of(model)
    labels = _as_labels(images, labels, labels_from(model)) if kind.labels else None
    images = _as_images(images)
    check_images(images, model.config)
    if kind.labels and (labels is None or len(labels) != len(images)):
        raise ValueError(f"a {kind.name} model is evaluated on labelled images: pass an ImageSet, or labels= of one per image")
    if binarize:
        images = _data.binarize(images, seed=seed)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    g = torch.Generator(device).manual_seed(seed)
    totals: dict[str, torch.Tensor] = {}
    chunks = range(0, images.shape[0], batch_size)
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc="evaluate", unit="batch", leave=False)
    for i in chunks:
        x = images[i : i + batch_size].to(device)
        y = labels[i : i + batch_size].to(device) if labels is not None else None
        for name, per_image in model.figures(x, y, g).items():
            totals[name] = totals.get(name, 0.0) + per_image.sum().double().cpu()
    model.train(was_training)
    n = images.shape[0]
    means = {name: (total / n).item() for name, total in totals.items()}
    if not all(math.isfinite(v) for v in means.values()):
        raise TrainingDiverged(
            f"the test figures are {means}: the model's outputs are not finite (NaN or inf weights?); "
            "evaluate an earlier checkpoint"
        )
    if kind.generator:
        bound = means.pop("nll_bound")
        return {"nll_bound": bound, "bits_per_dim": bits_per_dim(bound, model.config), **means, "images": n}
    return {**means, "images": n}
