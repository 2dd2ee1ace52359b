"""The per-step quantities of DRAW, declared once (Gregor et al. 2015, eq. 3-8 and 13-16).

The reference model passes each of them, as it computes it, through a *tap*:
``value = tap(name, step, value)`` (step t = 1..T, the paper's t). A recorder (drawviz.probes)
keeps a copy and returns the value unchanged; an intervention (drawviz.interventions) may
return a replacement, which the rest of the pass then uses. The fast path (drawviz.fast)
replays the same names after its pass, for recording only.

Windows travel as :class:`drawviz.attention.Window` (pixel-space g_x, g_y, δ, σ², γ, each
(batch,)), never as positional columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

__all__ = [
    "Quantity",
    "QUANTITIES",
    "Tap",
    "identity",
    "expected_shape",
    "X_HAT",
    "READ_WINDOW",
    "GLIMPSE",
    "H_ENC",
    "MU",
    "SIGMA_Z",
    "CONDITION",
    "ALIGNMENT",
    "MU_PRIOR",
    "SIGMA_PRIOR",
    "Z",
    "KL",
    "H_DEC",
    "WRITE_WINDOW",
    "WRITE_PATCH",
    "SCALE_CANVAS",
    "CANVAS",
]

RECONSTRUCTION, GENERATION = "reconstruction", "generation"


@dataclass(frozen=True)
class Quantity:
    """One per-step quantity: adding one is this declaration plus the line of the model that taps it."""

    name: str
    shape: str  # one step's value; C, H, W the image, N the read grid, M the write grid
    meaning: str
    modes: tuple = (RECONSTRUCTION,)  # the passes that compute it
    attention_only: bool = False  # only models with attentive read and write have it
    # (field, value): only a model whose config has it computes the quantity (an arm beyond the paper, e.g. a learned prior)
    arm: Optional[tuple] = None
    # one step's shape for a config and a batch (for windows: each field's); checked on replacement
    shape_of: Callable[[Any, int], tuple] = lambda c, batch: (batch,)


X_HAT, READ_WINDOW, GLIMPSE, H_ENC = "x_hat", "read_window", "glimpse", "h_enc"
MU, SIGMA_Z, Z, KL = "mu", "sigma_z", "z", "kl"
MU_PRIOR, SIGMA_PRIOR, SCALE_CANVAS = "mu_prior", "sigma_prior", "scale_canvas"  # arms beyond the paper (DrawConfig)
CONDITION, ALIGNMENT = "condition", "alignment"  # a conditional DRAW's (drawviz.conditional)
H_DEC, WRITE_WINDOW, WRITE_PATCH, CANVAS = "h_dec", "write_window", "write_patch", "canvas"

_BOTH = (RECONSTRUCTION, GENERATION)


def _image(c, batch: int) -> tuple:
    return (batch, c.channels, c.height, c.width)


# In the order one step computes them.
QUANTITIES: dict[str, Quantity] = {
    q.name: q
    for q in (
        Quantity(X_HAT, "(batch, C, H, W)", "error image x̂_t = x − σ(c_{t−1}), eq. 3", shape_of=_image),
        Quantity(
            READ_WINDOW, "Window of (batch,)", "read attention g_x, g_y, δ, σ², γ in pixels, eq. 21-24", attention_only=True
        ),
        Quantity(
            GLIMPSE,
            "(batch, 2, C, N, N)",
            "read output γ·[F_Y x F_Xᵀ, F_Y x̂ F_Xᵀ], eq. 27",
            attention_only=True,
            shape_of=lambda c, batch: (batch, c.read_images, c.channels, c.read_n, c.read_n),
        ),
        Quantity(H_ENC, "(batch, enc_size)", "encoder LSTM output h^enc_t, eq. 5", shape_of=lambda c, b: (b, c.enc_size)),
        Quantity(MU, "(batch, z_size)", "posterior mean μ_t", shape_of=lambda c, b: (b, c.z_size)),
        Quantity(SIGMA_Z, "(batch, z_size)", "posterior standard deviation σ_t", shape_of=lambda c, b: (b, c.z_size)),
        Quantity(
            CONDITION,
            "(batch, embed_size) for a label; (batch, words, 2·caption_size) for a caption",
            "the condition as step t sees it: the class's embedding, or the caption's words encoded by the bidirectional "
            "LSTM h^lang (alignDRAW); a hook from step t on swaps the label or the caption midway",
            modes=_BOTH,
            arm=("conditioned", True),
            shape_of=lambda c, b: (b, c.embed_size) if c.condition == "label" else (b, c.words, 2 * c.caption_size),
        ),
        Quantity(
            ALIGNMENT,
            "(batch, words)",
            "the caption alignment α_t over the words from h^dec_{t−1}, summing to 1 (alignDRAW's align(h^gen_{t−1}, "
            "h^lang)); step t's "
            "condition is Σ_j α_t,j h^lang_j",
            modes=_BOTH,
            arm=("condition", "caption"),
            shape_of=lambda c, b: (b, c.words),
        ),
        Quantity(
            MU_PRIOR,
            "(batch, z_size)",
            "learned prior's mean μ_p of p(z_t | h^dec_{t−1}) (not in the paper; Bachman 2016 / Gregor et al. 2016)",
            modes=_BOTH,
            arm=("prior", "learned"),
            shape_of=lambda c, b: (b, c.z_size),
        ),
        Quantity(
            SIGMA_PRIOR,
            "(batch, z_size)",
            "learned prior's standard deviation σ_p of p(z_t | h^dec_{t−1})",
            modes=_BOTH,
            arm=("prior", "learned"),
            shape_of=lambda c, b: (b, c.z_size),
        ),
        Quantity(
            Z,
            "(batch, z_size)",
            "latent z_t = μ_t + σ_t ε_t (eq. 6); when generating the prior's ε_t (eq. 13), or μ_p + σ_p ε_t with a learned prior",
            modes=_BOTH,
            shape_of=lambda c, b: (b, c.z_size),
        ),
        Quantity(KL, "(batch,)", "KL(Q(z_t | h^enc_t) || p(z_t)) in nats: against N(0, I), eq. 11, or the learned prior"),
        Quantity(
            H_DEC, "(batch, dec_size)", "decoder LSTM output h^dec_t, eq. 7", modes=_BOTH, shape_of=lambda c, b: (b, c.dec_size)
        ),
        Quantity(
            WRITE_WINDOW,
            "Window of (batch,)",
            "write attention g_x, g_y, δ, σ², γ in pixels, eq. 21-24",
            modes=_BOTH,
            attention_only=True,
        ),
        Quantity(
            WRITE_PATCH,
            "(batch, C, M, M); without attention the whole update (batch, C, H, W)",
            "what the step writes: w_t of eq. 28 (or W(h^dec_t) of eq. 18)",
            modes=_BOTH,
            shape_of=lambda c, b: (b, c.channels, c.write_n, c.write_n) if c.attention else _image(c, b),
        ),
        Quantity(
            SCALE_CANVAS,
            "(batch, C, H, W)",
            "scale canvas s_t = s_{t−1} + write_s(h^dec_t), the logistic's per-subpixel log-scale (s_T is the likelihood's; "
            "not in the paper)",
            modes=_BOTH,
            arm=("scale_canvas", True),
            shape_of=_image,
        ),
        Quantity(
            CANVAS, "(batch, C, H, W)", "canvas c_t = c_{t−1} + write(h^dec_t) as logits, eq. 8", modes=_BOTH, shape_of=_image
        ),
    )
}

# tap(name, step, value) -> value (or its replacement)
Tap = Callable[[str, int, Any], Any]


def identity(name: str, step: int, value):
    return value


def expected_shape(name: str, config, batch: int):
    """One step's shape of ``name`` for ``config`` (a tuple; for windows the shape of each field)."""
    return tuple(QUANTITIES[name].shape_of(config, batch))


def available(config, mode: str) -> list[str]:
    """The quantities a pass of ``mode`` computes for a model of ``config``, in step order (a kind that taps
    only some of them names those as its config's ``taps``)."""
    taps = getattr(config, "taps", None)
    return [
        q.name
        for q in QUANTITIES.values()
        if mode in q.modes
        and (config.attention or not q.attention_only)
        and (taps is None or q.name in taps)
        and (q.arm is None or getattr(config, q.arm[0], None) == q.arm[1])
    ]


def is_window(name: str) -> bool:
    return name in (READ_WINDOW, WRITE_WINDOW)
