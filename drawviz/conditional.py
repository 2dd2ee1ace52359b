"""DRAW that draws what it is asked for: conditioned on a class label or a caption (issue 34).

The step is DRAW's (drawviz.model); a condition enters it through three seams of ``DRAW``:

- ``_condition``: what step t sees of the condition. A label is an embedding e(y), the same at every step. A caption is
  encoded once by a bidirectional LSTM over its words, h^lang (words, 2·caption_size), and at each step the decoder's
  previous state chooses a soft alignment over the words, as alignDRAW does (Mansimov et al. 2016, "Generating Images
  from Captions with Attention"): α_t = softmax_j(vᵀ tanh(U h^lang_j + W h^dec_(t−1))), s_t = Σ_j α_t,j h^lang_j.
- where it enters (``ConditionalConfig.enters``, the ablation): (a) ``decoder``, the decoder's input [z_t, s_t] at
  every step; (b) ``prior``, a learned prior p(z_t | h^dec_(t−1), s_t) in place of N(0, I); (c) ``both``, alignDRAW's.

alignDRAW's inference network sees the caption only through h^dec, and so does this one. With ``condition="none"``
the model is DRAW itself: the same parameters drawn from the same seed, the same numbers. The condition is recorded
and open to hooks (drawviz.quantities CONDITION and ALIGNMENT): ``drawviz.interventions.swap_condition`` changes the
label or the caption from a step on; a hook on ``alignment`` moves the attention to another word.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from . import captions as _captions
from .checks import positive_int
from .model import DRAW, DrawConfig, InputError, _zeroed, check_images
from .quantities import ALIGNMENT, CONDITION, Tap

__all__ = ["CONDITIONS", "ENTRIES", "ConditionalConfig", "PRESETS", "ConditionalDRAW", "grown_from"]

CONDITIONS = ("none", "label", "caption")
# where the condition enters a step: (a) the decoder's input, (b) the learned prior, (c) both (alignDRAW)
ENTRIES = ("decoder", "prior", "both")


@dataclass(frozen=True)
class ConditionalConfig(DrawConfig):
    """A DRAW config, and the condition: what it is, where it enters, and its sizes."""

    prior: str = "learned"  # alignDRAW's p(z_t | h_dec_(t−1), condition); "standard" (N(0, I)) with enters="decoder"
    condition: str = "label"  # one of CONDITIONS
    enters: str = "both"  # one of ENTRIES; "prior" and "both" need prior="learned"
    classes: int = 10  # label: how many classes
    embed_size: int = 16  # label: the class's embedding; caption: each word's
    vocabulary: int = len(_captions.VOCABULARY)  # caption: token ids 0 .. vocabulary − 1 (drawviz.captions)
    words: int = _captions.LENGTH  # caption: tokens per caption
    caption_size: int = 128  # caption: each direction of the bidirectional LSTM (alignDRAW's 128)
    align_size: int = 128  # caption: the alignment's hidden units

    def __post_init__(self):
        super().__post_init__()
        for name in ("classes", "embed_size", "vocabulary", "words", "caption_size", "align_size"):
            object.__setattr__(self, name, positive_int(getattr(self, name), f"ConditionalConfig.{name}", ""))
        if self.condition not in CONDITIONS:
            raise ValueError(f"ConditionalConfig.condition must be one of {', '.join(CONDITIONS)}, got {self.condition!r}")
        if self.enters not in ENTRIES:
            raise ValueError(f"ConditionalConfig.enters must be one of {', '.join(ENTRIES)}, got {self.enters!r}")
        if self.conditioned and self.enters in ("prior", "both") and self.prior != "learned":
            raise ValueError(
                f"enters={self.enters!r} conditions the learned prior p(z_t | h_dec, condition): give prior='learned', "
                f"or enters='decoder' for the paper's N(0, I)"
            )

    @property
    def conditioned(self) -> bool:
        return self.condition != "none"

    @property
    def labels_from(self) -> str:
        """The ImageSet field the training loop hands over as this model's labels: its condition."""
        return "captions" if self.condition == "caption" else "labels"

    @property
    def conditioning(self) -> str:
        """The condition in one line (a model card's config row)."""
        where = {"decoder": "the decoder's input [z_t, s_t]", "prior": "a learned prior p(z_t | h_dec_(t−1), s_t)",
                 "both": "the decoder's input and a learned prior (alignDRAW's)"}[self.enters]  # fmt: skip
        if self.condition == "label":
            return f"condition: the class ({self.classes}), an embedding of {self.embed_size}, entering {where}"
        if self.condition == "caption":
            return (
                f"condition: a caption of {self.words} words ({self.vocabulary}-word vocabulary, embeddings of "
                f"{self.embed_size}), a bidirectional LSTM of {self.caption_size} each way and at every step a soft "
                f"alignment over the words ({self.align_size} units), entering {where}"
            )
        return "condition: none (DRAW itself)"

    @property
    def condition_size(self) -> int:
        """What a step sees of the condition, in units: e(y), or s_t (both of the caption LSTM's directions)."""
        return {"none": 0, "label": self.embed_size, "caption": 2 * self.caption_size}[self.condition]

    @classmethod
    def presets(cls) -> dict:
        return PRESETS


def _from_draw(config: DrawConfig, **fields) -> ConditionalConfig:
    return ConditionalConfig(**{**dataclasses.asdict(config), **fields})


_MNIST = DrawConfig()
PRESETS: dict[str, ConditionalConfig] = {
    # the shipped MNIST network (Table 3), told the class: the label can buy at most log 10 ≈ 2.3 nats
    "mnist-label": _from_draw(_MNIST, condition="label", enters="both", prior="learned"),
    # the ablation of where the label enters: (a) the decoder's input only, the paper's N(0, I) prior; (b) the prior only
    "mnist-label-decoder": _from_draw(_MNIST, condition="label", enters="decoder", prior="standard"),
    "mnist-label-prior": _from_draw(_MNIST, condition="label", enters="prior", prior="learned"),
    # models/fashion-mnist.pt, told the class: its grey images under the discretised logistic, not a binarised Bernoulli
    "fashion-mnist-label": _from_draw(DrawConfig(likelihood="logistic"), condition="label", enters="both", prior="learned"),
    # alignDRAW's MNIST model as a starting point (T = 32, read and write 8×8, LSTMs of 300, z of 150, caption LSTM of
    # 128 each way), on the 60×60 captioned canvas
    "captioned-mnist": ConditionalConfig(
        60,
        60,
        1,
        T=32,
        enc_size=300,
        dec_size=300,
        z_size=150,
        read_n=8,
        write_n=8,
        prior="learned",
        condition="caption",
        enters="both",
    ),  # fmt: skip
    # the shipped two-digit network (section 4.3: T = 32, read and write 5×5, LSTMs of 256, z of 100), told a caption:
    # grown from models/two-digit-mnist.pt it already draws digits on the 60×60 canvas, and learns only to follow words
    "captioned-mnist-from-two-digit": _from_draw(
        DrawConfig.preset("two-digit-mnist"), prior="learned", condition="caption", enters="both"
    ),
}


class ConditionalDRAW(DRAW):
    """DRAW whose steps also see a condition (``labels``: class ids (batch,) or caption token ids (batch, words))."""

    def __init__(self, config: ConditionalConfig = ConditionalConfig()):
        super().__init__(config)  # DRAW's parameters first, drawn as DRAW draws them: condition "none" is DRAW
        c = config
        if not c.conditioned:
            return
        if c.enters in ("decoder", "both"):  # (a): the decoder reads [z_t, s_t]
            self.decoder = nn.LSTMCell(c.z_size + c.condition_size, c.dec_size)
        if c.enters in ("prior", "both"):  # (b): p(z_t | h_dec_(t−1), s_t); zero: N(0, I) at the start, as DRAW's arm
            self.p = _zeroed(nn.Linear(c.dec_size + c.condition_size, 2 * c.z_size))
        if c.condition == "label":
            self.embed = nn.Embedding(c.classes, c.embed_size)
        else:
            self.embed = nn.Embedding(c.vocabulary, c.embed_size)
            self.language = nn.LSTM(c.embed_size, c.caption_size, batch_first=True, bidirectional=True)
            self.align_words = nn.Linear(2 * c.caption_size, c.align_size)  # U h^lang_j
            self.align_state = nn.Linear(c.dec_size, c.align_size, bias=False)  # W h^dec_(t−1)
            self.align_score = nn.Linear(c.align_size, 1, bias=False)  # vᵀ

    # ------------------------------------------------------------------ the condition, encoded once per pass

    def given(self, labels, batch: int) -> Optional[torch.Tensor]:
        """The condition as the steps read it: e(y) (batch, embed_size), or h^lang (batch, words, 2·caption_size)."""
        c = self.config
        if not c.conditioned:
            if labels is not None:
                raise InputError("this model takes no condition (condition='none'): leave labels out")
            return None
        what = "class ids (batch,)" if c.condition == "label" else f"caption token ids (batch, {c.words})"
        if labels is None:
            raise InputError(
                f"this model draws what it is asked for: give labels=, {what}"
                + (" (drawviz.captions.tokens makes them from a caption)" if c.condition == "caption" else "")
            )
        labels = torch.as_tensor(labels, device=self.c0.device)
        expected = (batch,) if c.condition == "label" else (batch, c.words)
        if labels.is_floating_point() or tuple(labels.shape) != expected:
            raise InputError(f"labels must be {what} as integers, {expected}; got {labels.dtype} {tuple(labels.shape)}")
        top = c.classes if c.condition == "label" else c.vocabulary
        if len(labels) and (labels.min() < 0 or labels.max() >= top):
            known = f"classes 0..{top - 1}" if c.condition == "label" else f"the {top} words of drawviz.captions.VOCABULARY"
            raise InputError(f"labels hold ids outside {known}: {labels.min().item()}..{labels.max().item()}")
        e = self.embed(labels.long())
        if c.condition == "label":
            return e
        return self.language(e)[0]  # h^lang: both directions, (batch, words, 2·caption_size)

    # ------------------------------------------------------------------ DRAW's seams

    def _condition(self, t: int, h_dec, given, tap: Tap) -> Optional[torch.Tensor]:
        if given is None:
            return None
        given = tap(CONDITION, t, given)
        if self.config.condition == "label":
            return given
        # alignDRAW's align(h^dec_(t−1), h^lang): a softmax over the words, then their weighted sum s_t
        scores = self.align_score(torch.tanh(self.align_words(given) + self.align_state(h_dec)[:, None])).squeeze(-1)
        alpha = tap(ALIGNMENT, t, F.softmax(scores, dim=1))  # (batch, words)
        return torch.einsum("bw,bwd->bd", alpha, given)  # s_t (batch, 2·caption_size)

    def _decoder_input(self, z, condition):
        if condition is None or self.config.enters == "prior":
            return z
        return torch.cat((z, condition), 1)  # (a): [z_t, s_t]

    def _prior_input(self, h_dec, condition):
        if condition is None or self.config.enters == "decoder":
            return h_dec
        return torch.cat((h_dec, condition), 1)  # (b): p(z_t | h_dec_(t−1), s_t)

    # ------------------------------------------------------------------ the protocol, with the condition

    def forward(self, x, eps=None, *, labels=None, generator=None, tap: Optional[Tap] = None, check: bool = True):
        """DRAW.forward with the condition ``labels`` (class ids (batch,) or caption token ids (batch, words))."""
        if check:  # the images before the condition: a wrong x is reported as such
            check_images(x, self.config)
        given = self.given(labels, x.shape[0])
        return super().forward(x, eps, generator=generator, tap=tap, check=False, given=given)

    @torch.no_grad()
    def generate(self, n, *, labels=None, generator=None, eps=None, tap: Optional[Tap] = None):
        """n images drawn from the prior given the condition ``labels`` (one per image): (T, n, C, H, W)."""
        given = self.given(labels, n if isinstance(n, int) else 0)
        return super().generate(n, generator=generator, eps=eps, tap=tap, given=given)


@torch.no_grad()
def grown_from(draw: DRAW, config: ConditionalConfig) -> ConditionalDRAW:
    """A conditional model that starts as the trained ``draw`` exactly: its weights copied, every path of the
    condition at zero (the decoder's weights from s_t, the learned prior's layer: N(0, I) until it learns), so that
    training from it learns only what the condition adds. The DRAW fields of ``config`` must be ``draw``'s (the prior
    may become learned: it starts as N(0, I))."""
    theirs, ours = draw.config.to_dict(), config.to_dict()
    differ = {k: (theirs[k], ours[k]) for k in theirs if k != "prior" and theirs[k] != ours[k]}
    if differ:
        raise ValueError(
            "a conditional model grows from a DRAW of its own shape; these differ (DRAW's, the config's): "
            + ", ".join(f"{k} {a!r} != {b!r}" for k, (a, b) in differ.items())
        )
    grown = ConditionalDRAW(config).to(next(draw.parameters()).device)
    mine = grown.state_dict()
    for name, value in draw.state_dict().items():
        if name not in mine:
            continue
        target = mine[name]
        if target.shape == value.shape:
            target.copy_(value)
        elif name in ("decoder.weight_ih", "p.weight"):  # the old inputs first, the condition's columns at zero
            target.zero_()
            target[:, : value.shape[1]] = value
        else:
            raise ValueError(f"cannot grow {name}: {tuple(value.shape)} into {tuple(target.shape)}")
    if config.conditioned and "p.weight" not in draw.state_dict() and hasattr(grown, "p"):
        grown.p.weight.zero_(), grown.p.bias.zero_()  # a new learned prior starts as DRAW's N(0, I)
    if config.conditioned and config.enters in ("decoder", "both"):
        grown.decoder.weight_ih[:, config.z_size :].zero_()  # s_t enters at zero: the decoder is DRAW's
    return grown
