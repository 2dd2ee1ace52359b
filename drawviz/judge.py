"""The judge: a small convolutional classifier that says which class a drawing shows (issue 34).

"Does it draw what it was asked?" needs a reader that is not the model itself. One is trained once on a dataset's
training images (their grey intensities, not binarised: it reads DRAW's σ(c_T), which is grey), shipped, and named in
that dataset's declaration (drawviz.data.Dataset.judge): ``models/judge.pt`` reads MNIST digits, and
``models/fashion-judge.pt`` Fashion-MNIST garments. It judges a conditional model's samples and is used for nothing
else. A plain LeNet-style net (two 5×5 convolutions with max-pooling, one hidden layer): the standard small net that
passes 99 % on MNIST (about 91 % on Fashion-MNIST, whose classes overlap: shirts, T-shirts and pullovers).

    python -m drawviz train --dataset mnist --preset mnist-judge --binarize none --checkpoint runs/judge.pt ...
    python -m drawviz train --dataset fashion-mnist --preset fashion-mnist-judge --binarize none ...

It is a model kind like the others (drawviz.kinds): trained, resumed, evaluated (``error``, ``cross_entropy``) and
carded by the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from .checks import positive_int
from .classifier import ClassifierOutput, check_labels, classifier_figures
from .model import ConfigFields, check_images
from .quantities import Tap

__all__ = ["JudgeConfig", "PRESETS", "Judge", "judged"]


@dataclass(frozen=True)
class JudgeConfig(ConfigFields):
    """The judge's shape: MNIST's images and classes, and its widths."""

    height: int = 28
    width: int = 28
    channels: int = 1
    classes: int = 10
    filters: int = 32  # the first convolution's; the second has twice as many
    hidden: int = 256

    def __post_init__(self):
        for name in ("height", "width", "channels", "classes", "filters", "hidden"):
            object.__setattr__(self, name, positive_int(getattr(self, name), f"JudgeConfig.{name}", ""))
        if self.height % 4 or self.width % 4:
            raise ValueError(
                f"the judge halves its images twice: height and width must be divisible by 4, got {self.height}×{self.width}"
            )

    # what the per-step quantities and figures ask of any kind: one look at the whole image, nothing recorded
    T = 1
    attention = False
    read_images = 1
    taps = ()

    def describe(self) -> str:
        """The network in one line (a model card's config row)."""
        side = f"{self.height // 4}×{self.width // 4}"
        return (
            f"{self.height}×{self.width}×{self.channels}; 5×5 convolution ({self.filters} channels, ReLU), 2×2 max-pool, "
            f"5×5 convolution ({2 * self.filters}, ReLU), 2×2 max-pool to {2 * self.filters}×{side}, linear {self.hidden} "
            f"(ReLU), softmax over {self.classes} classes"
        )

    @classmethod
    def presets(cls) -> dict:
        return PRESETS


# one net for both: Fashion-MNIST's ten classes are as many and its images the same size
PRESETS = {"mnist-judge": JudgeConfig(), "fashion-mnist-judge": JudgeConfig()}


class Judge(nn.Module):
    """conv 5×5 → ReLU → max-pool 2 → conv 5×5 → ReLU → max-pool 2 → ReLU(linear) → linear: class scores."""

    def __init__(self, config: JudgeConfig = JudgeConfig()):
        super().__init__()
        self.config = c = config
        self.conv1 = nn.Conv2d(c.channels, c.filters, 5, padding=2)
        self.conv2 = nn.Conv2d(c.filters, 2 * c.filters, 5, padding=2)
        self.hidden = nn.Linear(2 * c.filters * (c.height // 4) * (c.width // 4), c.hidden)
        self.out = nn.Linear(c.hidden, c.classes)

    def extra_repr(self) -> str:
        return f"config={self.config}"

    def sample_eps(self, batch: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """No noise: an empty (1, batch, 0), so the training loop treats every kind alike."""
        return self.out.weight.new_zeros(1, batch, 0)

    def forward(
        self,
        x: torch.Tensor,
        eps: Optional[torch.Tensor] = None,
        *,
        labels: Optional[torch.Tensor] = None,
        generator: Optional[torch.Generator] = None,
        tap: Optional[Tap] = None,
        check: bool = True,
    ) -> ClassifierOutput:
        """Class scores for x (batch, C, H, W) in [0, 1]; with labels (batch,), the cross-entropy too."""
        if check:
            check_images(x, self.config)
            check_labels(labels, x, self.config.classes)
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        logits = self.out(F.relu(self.hidden(h.flatten(1))))
        batch = x.shape[0]
        nll = F.cross_entropy(logits, labels, reduction="none") if labels is not None else logits.new_zeros(batch)
        return ClassifierOutput(nll.mean(), nll, logits.new_zeros(1, batch), logits)

    def figures(self, x: torch.Tensor, labels: torch.Tensor, generator=None) -> dict:
        """Per image: the error (0 or 1) and the cross-entropy (nats; also ``nll_bound``, −log p(y | x))."""
        return classifier_figures(self(x, labels=labels, check=False), labels)


@torch.no_grad()
def judged(judge: Judge, images: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """The judge's verdict on images (N, C, H, W) in [0, 1]: the class it sees (N,) and its probability (N,)."""
    was = judge.training
    judge.eval()
    probabilities = torch.cat([judge(images[i : i + batch_size]).logits.softmax(1) for i in range(0, len(images), batch_size)])
    judge.train(was)
    confidence, seen = probabilities.max(1)
    return seen, confidence
