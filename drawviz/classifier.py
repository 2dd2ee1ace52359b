"""DRAW's read-only classifier (Gregor et al. 2015, section 4.1, Table 3: cluttered MNIST).

"A recurrent network that reads only": at each of T steps it chooses a window from its previous state,
takes one N×N glimpse of the image through DRAW's read filterbank (``attention.Read``, the generator's
own), and feeds it to an LSTM; the last state goes through a softmax over the classes. No canvas, no
error image, no latent: the paper's 12×12 glimpse, LSTM of 256, 8 glimpses (3.36 % test error; 4 glimpses
4.18 %).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import torch
from torch import nn
from torch.nn import functional as F

from .attention import Read
from .checks import positive_int
from .model import ConfigFields, InputError, check_images
from .quantities import GLIMPSE, H_ENC, READ_WINDOW, Tap, identity

__all__ = ["ClassifierConfig", "PRESETS", "PAPER_TABLE_1", "GlimpseClassifier", "ClassifierOutput"]


@dataclass(frozen=True)
class ClassifierConfig(ConfigFields):
    """Everything that fixes the classifier's shape. Defaults: the paper's cluttered-MNIST network (Table 3)."""

    height: int = 100
    width: int = 100
    channels: int = 1
    T: int = 8  # glimpses
    enc_size: int = 256  # the one LSTM's units (it plays DRAW's encoder: it reads)
    read_n: int = 12  # a glimpse is read_n × read_n per channel
    classes: int = 10

    def __post_init__(self):
        for name in ("height", "width", "channels", "T", "enc_size", "read_n", "classes"):
            object.__setattr__(self, name, positive_int(getattr(self, name), f"ClassifierConfig.{name}", ""))

    # what the per-step quantities and figures ask of any kind
    attention = True  # it reads through a window
    read_images = 1  # the image only: there is no canvas, so no error image
    taps = (READ_WINDOW, GLIMPSE, H_ENC)  # the per-step quantities it computes (drawviz.quantities)

    @classmethod
    def presets(cls) -> dict:
        return PRESETS


# The paper's Table 1: test error on 100×100 cluttered translated MNIST (RAM and the convolutional net as the
# paper quotes them from Mnih et al. 2014), with the glimpses of each
PAPER_TABLE_1 = (
    ("Convolutional, 2 layers", None, 0.1435),
    ("RAM, 4 glimpses, 12×12, 4 scales", 4, 0.0941),
    ("RAM, 8 glimpses, 12×12, 4 scales", 8, 0.0811),
    ("Differentiable RAM (DRAW), 4 glimpses, 12×12", 4, 0.0418),
    ("Differentiable RAM (DRAW), 8 glimpses, 12×12", 8, 0.0336),
)

PRESETS = {
    "cluttered-mnist": ClassifierConfig(),
    "cluttered-mnist-4": ClassifierConfig(T=4),
}


class ClassifierOutput(NamedTuple):
    """What one pass returns, in the training loop's terms: ``nll`` is −log p(y | x) (the cross-entropy, nats)."""

    loss: torch.Tensor  # scalar: mean cross-entropy over the batch
    nll: torch.Tensor  # (batch,) cross-entropy per image (zeros without labels)
    kl: torch.Tensor  # (T, batch) zeros: no latent
    logits: torch.Tensor  # (batch, classes)


def check_labels(labels: Optional[torch.Tensor], x: torch.Tensor, classes: int) -> None:
    """Raise InputError unless labels are None or (batch,) class indices of the images x."""
    if labels is not None and (labels.shape != x.shape[:1] or labels.min() < 0 or labels.max() >= classes):
        raise InputError(f"labels must be (batch,) class indices in 0..{classes - 1}")


def classifier_figures(out: ClassifierOutput, labels: torch.Tensor) -> dict:
    """Per image, what evaluation averages for a classifier: the error (0 or 1) and the cross-entropy (nats; also
    ``nll_bound``, −log p(y | x), exact: there is no latent to bound)."""
    wrong = (out.logits.argmax(1) != labels).to(out.nll.dtype)
    return {"nll_bound": out.nll, "error": wrong, "cross_entropy": out.nll}


class GlimpseClassifier(nn.Module):
    """T glimpses through DRAW's read attention into an LSTM, then a softmax (section 4.1)."""

    def __init__(self, config: ClassifierConfig = ClassifierConfig()):
        super().__init__()
        self.config = c = config
        self.read = Read(c.enc_size, c.read_n, c.width, c.height)  # the window from h_(t-1), eq. 21-24
        self.lstm = nn.LSTMCell(c.channels * c.read_n * c.read_n, c.enc_size)
        self.out = nn.Linear(c.enc_size, c.classes)
        self.h0 = nn.Parameter(torch.zeros(c.enc_size))

    def extra_repr(self) -> str:
        return f"config={self.config}"

    def sample_eps(self, batch: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """No noise: an empty (T, batch, 0), so the training loop treats every kind alike."""
        return self.h0.new_zeros(self.config.T, batch, 0)

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
        """Classify x (batch, C, H, W) in [0, 1]; with labels (batch,), the cross-entropy too.

        tap: as DRAW's, with the read window, the glimpse ((batch, 1, C, N, N): the image's only; DRAW's
        glimpse also reads the error image) and the LSTM state (h_enc) of every step."""
        if check:
            check_images(x, self.config)
            check_labels(labels, x, self.config.classes)
        tap = tap or identity
        batch = x.shape[0]
        h, c = self.h0.expand(batch, -1), self.h0.new_zeros(batch, self.config.enc_size)
        for t in range(1, self.config.T + 1):
            window = tap(READ_WINDOW, t, self.read.window(h))  # from the previous state, as DRAW's read
            glimpse = tap(GLIMPSE, t, self.read.look(x[:, None], window))  # γ·F_Y x F_Xᵀ, eq. 27 without x̂
            h, c = self.lstm(glimpse.flatten(1), (h, c))
            h = tap(H_ENC, t, h)
        logits = self.out(h)
        nll = F.cross_entropy(logits, labels, reduction="none") if labels is not None else logits.new_zeros(batch)
        return ClassifierOutput(nll.mean(), nll, logits.new_zeros(self.config.T, batch), logits)

    def figures(self, x: torch.Tensor, labels: torch.Tensor, generator=None) -> dict:
        """Per image, what evaluation averages: the error (0 or 1) and the cross-entropy (nats); ``nll_bound``
        is the cross-entropy too (−log p(y | x), exact: there is no latent to bound)."""
        return classifier_figures(self(x, labels=labels, check=False), labels)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (batch, classes)."""
        return self(x).logits.softmax(1)
