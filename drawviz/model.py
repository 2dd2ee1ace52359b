"""DRAW: the configuration and the recurrent VAE (Gregor et al. 2015, section 2)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import NamedTuple, Optional

import torch
from torch import nn

from . import likelihood as _likelihood
from .checks import positive_int
from .attention import FullRead, FullWrite, Read, Write
from .quantities import (
    CANVAS,
    GLIMPSE,
    H_DEC,
    H_ENC,
    KL,
    MU,
    MU_PRIOR,
    READ_WINDOW,
    SCALE_CANVAS,
    SIGMA_PRIOR,
    SIGMA_Z,
    WRITE_PATCH,
    WRITE_WINDOW,
    X_HAT,
    Z,
    Tap,
    identity,
)

__all__ = ["ConfigFields", "DrawConfig", "PRESETS", "PRIORS", "DRAW", "DrawOutput", "InputError", "check_images"]

# p(z_t): "standard" is the paper's N(0, I) (eq. 11, 13); "learned" is N(μ_p, σ_p) from h_dec_(t−1) (not in the
# paper; Bachman 2016 / Gregor et al. 2016's conditional prior)
PRIORS = ("standard", "learned")


class ConfigFields:
    """What every model kind's frozen config shares: saved as a dict, read back with unknown keys refused,
    compared field by field, and made from the kind's named presets (``PRESETS`` of its class)."""

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    @property
    def pixels(self) -> int:
        return self.channels * self.height * self.width

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        return from_fields(cls, data)

    @classmethod
    def preset(cls, name: str, **overrides):
        """A named configuration (e.g. a Table 3 model by dataset name), with field overrides (e.g. T=8)."""
        key = name.lower().replace("_", "-")
        presets = cls.presets()
        if key not in presets:
            raise ValueError(f"unknown {cls.__name__} preset {name!r}; choose one of {sorted(presets)}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"a {cls.__name__} has no {', '.join(unknown)}; its fields are {', '.join(sorted(known))}")
        return dataclasses.replace(presets[key], **overrides)

    @classmethod
    def presets(cls) -> dict:
        raise NotImplementedError

    def diff(self, other) -> dict:
        """Fields whose values differ: {name: (self's, other's)} (every field, when the kinds differ)."""
        if type(other) is not type(self):
            return {"kind": (type(self).__name__, type(other).__name__)}
        return {
            f.name: (getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        }


@dataclass(frozen=True)
class DrawConfig(ConfigFields):
    """Everything that fixes a DRAW network's shape. Defaults: the paper's MNIST model (Table 3)."""

    height: int = 28  # B in the paper
    width: int = 28  # A in the paper
    channels: int = 1
    T: int = 64  # glimpses / drawing steps
    enc_size: int = 256  # encoder LSTM units
    dec_size: int = 256  # decoder LSTM units
    z_size: int = 100  # latent dimensions per step
    read_n: int = 2  # read grid is read_n × read_n
    write_n: int = 5  # write grid is write_n × write_n
    attention: bool = True  # False: the paper's no-attention baseline
    # D(x | c_T), eq. 9: "bernoulli" (the paper's, for binary images) or "logistic" (a discretised
    # logistic on 8-bit values, for grey or colour intensities; see drawviz.likelihood)
    likelihood: str = "bernoulli"
    # Arms beyond the paper (issue 33), off by default: off, the network, its parameters and its numbers are the paper's.
    # scale_canvas: the decoder also draws the logistic's per-subpixel log-scale, a second canvas s_t written through
    # the canvas's own window (DRAW.forward); s_T replaces the one learned log-scale parameter
    scale_canvas: bool = False
    prior: str = "standard"  # p(z_t), one of PRIORS

    read_images = 2  # not a field: each glimpse reads the image and the error image (eq. 27)

    def __post_init__(self):
        for name in ("height", "width", "channels", "T", "enc_size", "dec_size", "z_size", "read_n", "write_n"):
            what = "N of an N×N attention grid" if name.endswith("_n") else ""
            # stored as a plain int: a numpy integer would not survive a weights-only checkpoint load
            object.__setattr__(self, name, positive_int(getattr(self, name), f"DrawConfig.{name}", what))
        if not isinstance(self.attention, bool):
            raise ValueError(f"DrawConfig.attention must be True or False, got {self.attention!r}")
        if self.likelihood not in _likelihood.LIKELIHOODS:  # looked up now: a likelihood registered later counts
            raise ValueError(
                f"DrawConfig.likelihood must be one of {', '.join(_likelihood.LIKELIHOODS)}, got {self.likelihood!r}"
            )
        if not isinstance(self.scale_canvas, bool):
            raise ValueError(f"DrawConfig.scale_canvas must be True or False, got {self.scale_canvas!r}")
        if self.scale_canvas and "log_scale" not in _likelihood.get(self.likelihood).parameters(self):
            raise ValueError(
                f"DrawConfig.scale_canvas draws the likelihood's per-subpixel log-scale as a second canvas, and the "
                f"{self.likelihood!r} likelihood has no scale: use likelihood='logistic', or scale_canvas=False"
            )
        if self.prior not in PRIORS:
            raise ValueError(f"DrawConfig.prior must be one of {', '.join(PRIORS)}, got {self.prior!r}")

    def beyond_paper(self) -> dict:
        """The arms beyond the paper this config turns on: {field: value} (empty for the paper's model)."""
        return {name: getattr(self, name) for name, off in _ARMS_OFF.items() if getattr(self, name) != off}

    @classmethod
    def presets(cls) -> dict:
        return PRESETS


def from_fields(cls, data: dict):
    """A frozen dataclass (a config, a recipe) from its saved dict; unknown keys are a clear error."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {sorted(unknown)}; known: {sorted(known)}")
    return cls(**data)


_ARMS_OFF = {"scale_canvas": False, "prior": "standard"}  # each arm's field, off (the paper's model)
_MNIST = DrawConfig()
PRESETS: dict[str, DrawConfig] = {
    "mnist": _MNIST,
    "mnist-noattn": dataclasses.replace(_MNIST, attention=False),
    "fashion-mnist": _MNIST,
    # The paper drew 64×64 SVHN; torchvision's SVHN crops are 32×32.
    # Colour: the paper's Bernoulli on intensities is no likelihood of 8-bit images; the presets
    # use the discretised logistic, so bits/dim compare with published figures.
    "svhn": DrawConfig(32, 32, 3, T=32, enc_size=800, dec_size=800, z_size=100, read_n=12, write_n=12, likelihood="logistic"),
    "cifar10": DrawConfig(32, 32, 3, T=64, enc_size=400, dec_size=400, z_size=200, read_n=5, write_n=5, likelihood="logistic"),
    # Section 4.3 gives no sizes for two digits on 60×60: the MNIST network with 5×5 reads and writes
    # (a read of 2×2 cannot see a digit's shape on a frame twice as wide), T chosen by measurement (models/README.md)
    "two-digit-mnist": DrawConfig(60, 60, 1, T=32, read_n=5, write_n=5),
}


class InputError(ValueError):
    """Images that DRAW cannot take; the message says what was expected."""


def check_images(x: torch.Tensor, config: DrawConfig) -> None:
    """Raise InputError unless x is a float (batch, C, H, W) tensor of finite values in [0, 1]."""
    expected = config.image_shape
    if not isinstance(x, torch.Tensor):
        raise InputError(f"expected a torch.Tensor of shape (batch, {', '.join(map(str, expected))}), got {type(x).__name__}")
    if x.dim() != 4 or tuple(x.shape[1:]) != expected:
        hint = ""
        if x.dim() == 3 and tuple(x.shape[1:]) == expected[1:] and expected[0] == 1:
            hint = " (add the channel axis: x.unsqueeze(1))"
        elif x.dim() == 4 and x.shape[-1] == expected[0] and tuple(x.shape[1:3]) == expected[1:]:
            hint = " (channels-last input: use x.permute(0, 3, 1, 2))"
        raise InputError(
            f"expected images of shape (batch, {', '.join(map(str, expected))}) "
            f"= (batch, channels, height, width) for this config, got {tuple(x.shape)}{hint}"
        )
    if not x.is_floating_point():
        raise InputError(f"expected float pixel values in [0, 1], got dtype {x.dtype} (for uint8 images use x.float() / 255)")

    if x.numel() == 0:
        raise InputError("expected at least one image, got an empty batch")
    if not torch.isfinite(x).all():
        raise InputError("images contain NaN or inf values; DRAW needs finite pixel values in [0, 1]")
    lo, hi = x.min().item(), x.max().item()
    if lo < 0 or hi > 1:
        raise InputError(
            f"pixel values must lie in [0, 1] (Bernoulli probabilities), got min {lo:.4g} and max {hi:.4g}; rescale, e.g. x / 255"
        )


class DrawOutput(NamedTuple):
    """What one pass returns. Losses in nats; per-image terms have shape (batch,)."""

    loss: torch.Tensor  # scalar: mean over the batch of nll + kl (the negative ELBO)
    nll: torch.Tensor  # (batch,) L^x = −log D(x | c_T), eq. 9
    kl: torch.Tensor  # (T, batch) KL(Q(z_t | h_enc_t) || p(z_t)) per step, eq. 11 (p = N(0, I) but for a learned prior)
    canvas: torch.Tensor  # (batch, C, H, W) final canvas c_T, as logits


class DRAW(nn.Module):
    """The DRAW network (eq. 3-8) with attentive (section 3) or full read and write.

    Written for reading, one step at a time; the state c_0, h_enc_0, h_dec_0 are learned biases.
    """

    def __init__(self, config: DrawConfig = DrawConfig()):
        super().__init__()
        self.config = c = config
        if c.attention:
            self.read = Read(c.dec_size, c.read_n, c.width, c.height)
            self.write = Write(c.dec_size, c.write_n, c.width, c.height, c.channels)
        else:
            self.read = FullRead(c.channels, c.width, c.height)
            self.write = FullWrite(c.dec_size, c.channels, c.width, c.height)
        self.encoder = nn.LSTMCell(self.read.output_size(c.channels) + c.dec_size, c.enc_size)
        self.decoder = nn.LSTMCell(c.z_size, c.dec_size)
        self.q = nn.Linear(c.enc_size, 2 * c.z_size)  # -> (μ_t, log σ_t), eq. 1-2 of section 2.1
        self.c0 = nn.Parameter(torch.zeros(c.image_shape))
        self.h_enc0 = nn.Parameter(torch.zeros(c.enc_size))
        self.h_dec0 = nn.Parameter(torch.zeros(c.dec_size))
        # what the likelihood learns beside the network (the logistic: a log scale per subpixel)
        parameters = _likelihood.get(c.likelihood).parameters(c)
        initial_scale = parameters.pop("log_scale") if c.scale_canvas else None  # drawn as s_T instead
        self._likelihood_parameters = tuple(parameters)
        for name, initial in parameters.items():
            self.register_parameter(name, nn.Parameter(initial))
        # The arms (beyond the paper) are built last, so that the paper's parameters draw the same initial values from
        # a seed as the plain model's; zero-initialised, so that an arm starts as the plain model and departs from it
        # only as far as training moves it.
        if c.prior == "learned":
            # p(z_t | h_dec_(t−1)) -> (μ_p, log σ_p), as q -> (μ_t, log σ_t); zero: N(0, I) at the start
            self.p = _zeroed(nn.Linear(c.dec_size, 2 * c.z_size))
        if c.scale_canvas:
            # write_s: its own patch (C·M·M) painted through the canvas's write window (the step's one choice of
            # where to draw), or without attention its own whole update (C·H·W); zero: s_t = s_0 at the start
            out = c.channels * (c.write_n**2 if c.attention else c.height * c.width)
            self.write_scale = _zeroed(nn.Linear(c.dec_size, out))
            self.s0 = nn.Parameter(initial_scale)  # learned s_0, from the likelihood's initial log-scale

    def extra_repr(self) -> str:
        return f"config={self.config}"

    def sample_eps(self, batch: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """A fresh standard-normal ε for every step: (T, batch, z_size)."""
        c = self.config
        device = self.c0.device
        return torch.randn(c.T, batch, c.z_size, generator=generator, device=device, dtype=self.c0.dtype)

    def check_dtype(self, x: torch.Tensor) -> None:
        """Raise InputError unless x has the model's dtype (float32 unless the model was converted)."""
        if x.dtype != self.c0.dtype:
            raise InputError(
                f"the images are {x.dtype} but the model is {self.c0.dtype}; "
                f"use x.to({str(self.c0.dtype).replace('torch.', 'torch.')})"
            )

    def check_eps(self, eps: torch.Tensor, batch: int) -> None:
        """Raise InputError unless eps is the (T, batch, z_size) noise of one pass."""
        expected = (self.config.T, batch, self.config.z_size)
        if not isinstance(eps, torch.Tensor) or tuple(eps.shape) != expected:
            got = tuple(eps.shape) if isinstance(eps, torch.Tensor) else type(eps).__name__
            raise InputError(
                f"eps must have shape (T, batch, z_size) = {expected}, a fresh N(0, I) draw per step; "
                f"got {got} (model.sample_eps(batch) makes one)"
            )

    def initial_state(self, batch: int):
        c = self.config
        zeros = lambda n: self.c0.new_zeros(batch, n)
        return (
            self.c0.expand(batch, *c.image_shape),
            (self.h_enc0.expand(batch, -1), zeros(c.enc_size)),
            (self.h_dec0.expand(batch, -1), zeros(c.dec_size)),
        )

    def forward(
        self,
        x: torch.Tensor,
        eps: Optional[torch.Tensor] = None,
        *,
        generator: Optional[torch.Generator] = None,
        tap: Optional[Tap] = None,
        check: bool = True,
        given=None,
    ) -> DrawOutput:
        """Reconstruct x (batch, C, H, W) in [0, 1]; return the loss terms of eq. 9-12.

        eps: (T, batch, z_size) noise, drawn from ``generator`` when not given.
        tap: called as tap(name, t, value) with every quantity of drawviz.quantities as step
          t = 1..T computes it; what it returns is used in its place (a recorder returns the value).
        given: what a conditional kind's steps see (drawviz.conditional encodes it); None for DRAW.
        """
        if check:
            check_images(x, self.config)
        batch = x.shape[0]
        if eps is None:
            eps = self.sample_eps(batch, generator)
        self.check_eps(eps, batch)
        self.check_dtype(x)
        tap = tap or identity
        canvas, (h_enc, c_enc), (h_dec, c_dec) = self.initial_state(batch)
        scale = self.initial_scale(batch)  # s_0 (batch, C, H, W) with scale_canvas, else None
        kls = []
        for t in range(1, self.config.T + 1):
            x_hat = tap(X_HAT, t, x - torch.sigmoid(canvas))  # error image, eq. 3
            r = self._read(t, x, x_hat, h_dec, tap)  # eq. 4
            h_enc, c_enc = self.encoder(torch.cat((r, h_dec), 1), (h_enc, c_enc))  # eq. 5
            h_enc = tap(H_ENC, t, h_enc)
            mu, log_sigma = self.q(h_enc).chunk(2, 1)
            mu = tap(MU, t, mu)
            sigma = torch.exp(log_sigma)
            tapped = tap(SIGMA_Z, t, sigma)
            if tapped is not sigma:  # replaced: its log enters the KL
                sigma, log_sigma = tapped, tapped.log()
            condition = self._condition(t, h_dec, given, tap)  # from h_dec_(t−1); None for DRAW
            if self.config.prior == "learned":
                mu_p, sigma_p, log_sigma_p = self._prior(t, h_dec, condition, tap)  # from h_dec_(t−1): not yet updated
            z = tap(Z, t, mu + sigma * eps[t - 1])  # eq. 6, reparameterised
            if self.config.prior == "learned":
                # KL(N(μ, σ²) || N(μ_p, σ_p²)) = log σ_p − log σ + (σ² + (μ − μ_p)²) / 2σ_p² − ½, summed over z
                # (not in the paper; Bachman 2016 / Gregor et al. 2016)
                kl = (log_sigma_p - log_sigma + (sigma.pow(2) + (mu - mu_p).pow(2)) / (2 * sigma_p.pow(2)) - 0.5).sum(1)
            else:
                # KL(N(μ, σ²) || N(0, 1)) = ½(μ² + σ² − log σ² − 1), summed over z: eq. 11 per step.
                kl = 0.5 * (mu.pow(2) + sigma.pow(2) - 2 * log_sigma - 1).sum(1)
            kls.append(tap(KL, t, kl))
            h_dec, c_dec = self.decoder(self._decoder_input(z, condition), (h_dec, c_dec))  # eq. 7
            h_dec = tap(H_DEC, t, h_dec)
            update, scale_update = self._write(t, h_dec, tap)
            if scale is not None:
                scale = tap(SCALE_CANVAS, t, scale + scale_update)  # s_t = s_(t−1) + write_s(h_dec_t), as eq. 8
            canvas = tap(CANVAS, t, canvas + update)  # eq. 8
        nll = self.nll(canvas, x, scale)  # eq. 9; with scale_canvas the logistic's log-scale is s_T
        kl = torch.stack(kls)
        return DrawOutput((nll + kl.sum(0)).mean(), nll, kl, canvas)

    def figures(self, x: torch.Tensor, labels=None, generator: Optional[torch.Generator] = None) -> dict:
        """Per image (batch,), what evaluation averages: the negative ELBO (eq. 12) and its two terms, in nats.
        labels: a conditional kind's condition (drawviz.conditional); DRAW takes none."""
        out = self(x, generator=generator, check=False, **({} if labels is None else {"labels": labels}))
        kl = out.kl.sum(0)
        return {"nll_bound": out.nll + kl, "recon_nll": out.nll, "kl": kl}

    def _read(self, t: int, x, x_hat, h_dec, tap: Tap) -> torch.Tensor:
        """r_t, eq. 4 (attentive, eq. 27) or 17 (the whole image)."""
        if not self.config.attention:
            return self.read(x, x_hat, h_dec)[0]
        window = tap(READ_WINDOW, t, self.read.window(h_dec))
        return tap(GLIMPSE, t, self.read.glimpse(x, x_hat, window)).flatten(1)

    def _write(self, t: int, h_dec, tap: Tap) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """write(h_dec_t), the canvas update: eq. 29 (attentive) or 18 (the whole canvas), each (batch, C, H, W);
        and with scale_canvas write_s(h_dec_t), the scale canvas's update through the same window (else None)."""
        c = self.config
        if not c.attention:
            update = tap(WRITE_PATCH, t, self.write(h_dec)[0])
            return update, self.write_scale(h_dec).view_as(update) if c.scale_canvas else None
        window = tap(WRITE_WINDOW, t, self.write.window(h_dec))
        w = tap(WRITE_PATCH, t, self.write.patch_from(h_dec))
        if not c.scale_canvas:
            return self.write.paint(w, window), None
        w_s = self.write_scale(h_dec).view_as(w)  # write_s's own patch (batch, C, M, M)
        # eq. 29 for both patches through the one window, as 2C channels: its filterbanks are built once
        return self.write.paint(torch.cat((w, w_s), 1), window).chunk(2, 1)

    def _condition(self, t: int, h_dec, given, tap: Tap) -> Optional[torch.Tensor]:
        """What step t sees of a condition (batch, size), from ``given`` and h_dec_(t−1): DRAW has none. A conditional
        kind (drawviz.conditional) overrides this, ``_decoder_input`` and ``_prior_input``; the step is DRAW's."""
        return None

    def _decoder_input(self, z: torch.Tensor, condition: Optional[torch.Tensor]) -> torch.Tensor:
        """The decoder LSTM's input at a step: z_t (eq. 7, 14)."""
        return z

    def _prior_input(self, h_dec: torch.Tensor, condition: Optional[torch.Tensor]) -> torch.Tensor:
        """What the learned prior reads: h_dec_(t−1)."""
        return h_dec

    def _prior(self, t: int, h_dec, condition, tap: Tap):
        """p(z_t | h_dec_(t−1)) = N(μ_p, σ_p²): μ_p, σ_p, log σ_p, each (batch, z_size) (not in the paper; Bachman 2016 /
        Gregor et al. 2016)."""
        mu_p, log_sigma_p = self.p(self._prior_input(h_dec, condition)).chunk(2, 1)
        mu_p = tap(MU_PRIOR, t, mu_p)
        sigma_p = torch.exp(log_sigma_p)
        tapped = tap(SIGMA_PRIOR, t, sigma_p)
        if tapped is not sigma_p:  # replaced: its log enters the KL
            sigma_p, log_sigma_p = tapped, tapped.log()
        return mu_p, sigma_p, log_sigma_p

    def initial_scale(self, batch: int) -> Optional[torch.Tensor]:
        """s_0, the learned scale canvas, as (batch, C, H, W) with scale_canvas; None without."""
        return self.s0.expand(batch, *self.config.image_shape) if self.config.scale_canvas else None

    def nll(self, canvas: torch.Tensor, x: torch.Tensor, scale: Optional[torch.Tensor] = None) -> torch.Tensor:
        """L^x = −log D(x | c_T) per image (batch,), eq. 9, under the config's likelihood.

        scale: with scale_canvas, the scale canvas drawn with ``canvas`` (s_T with c_T, s_t with c_t, s_0 with c_0:
          ``initial_scale``), the logistic's log-scale; without, None (the learned log-scale parameter)."""
        parameters = {name: getattr(self, name) for name in self._likelihood_parameters}
        if self.config.scale_canvas:
            if scale is None:
                raise ValueError(
                    "this model draws its likelihood's log-scale as a second canvas (scale_canvas): give scale=, the "
                    "scale canvas drawn with this canvas (s_t: trace['scale_canvas'][t - 1]; s_0: model.initial_scale(batch))"
                )
            parameters["log_scale"] = scale
        elif scale is not None:
            raise ValueError("scale= is the scale canvas of a model with scale_canvas; this model draws none")
        return _likelihood.nll(self.config.likelihood, canvas, x, **parameters)

    @torch.no_grad()
    def generate(
        self,
        n: int,
        *,
        generator: Optional[torch.Generator] = None,
        eps: Optional[torch.Tensor] = None,
        tap: Optional[Tap] = None,
        given=None,
    ) -> torch.Tensor:
        """Draw n images from the prior (eq. 13-16). Returns canvases σ(c_t): (T, n, C, H, W).

        tap: as in forward, for the quantities generation computes (z, h_dec, write, canvas; the arms' own).
        given: as in forward (a conditional kind's condition, encoded); None for DRAW."""
        try:
            n = positive_int(n, "n", "a positive number of samples")
        except ValueError as err:
            raise InputError(str(err)) from None
        if eps is None:
            eps = self.sample_eps(n, generator)
        self.check_eps(eps, n)
        tap = tap or identity
        canvas, _, (h_dec, c_dec) = self.initial_state(n)
        scale = self.initial_scale(n)
        frames = []
        for t in range(1, self.config.T + 1):
            condition = self._condition(t, h_dec, given, tap)  # from h_dec_(t−1); None for DRAW
            if self.config.prior == "learned":
                mu_p, sigma_p, _ = self._prior(t, h_dec, condition, tap)  # from h_dec_(t−1)
                # z_t ~ p(z_t | h_dec_(t−1)), the learned prior (not in the paper; Bachman 2016 / Gregor et al. 2016)
                z = tap(Z, t, mu_p + sigma_p * eps[t - 1])
            else:
                z = tap(Z, t, eps[t - 1])  # z_t ~ N(0, I), eq. 13
            h_dec, c_dec = self.decoder(self._decoder_input(z, condition), (h_dec, c_dec))  # eq. 14
            h_dec = tap(H_DEC, t, h_dec)
            update, scale_update = self._write(t, h_dec, tap)
            if scale is not None:  # drawn too, so that a hook or a recording sees s_t
                scale = tap(SCALE_CANVAS, t, scale + scale_update)
            canvas = tap(CANVAS, t, canvas + update)  # eq. 15
            frames.append(torch.sigmoid(canvas))
        return torch.stack(frames)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, *, generator: Optional[torch.Generator] = None, **condition) -> torch.Tensor:
        """Canvas sequence σ(c_t) while reconstructing x: (T, batch, C, H, W). condition: a conditional kind's
        ``labels=`` (drawviz.conditional)."""
        frames = []

        def keep(name, t, value):
            if name == CANVAS:
                frames.append(torch.sigmoid(value))
            return value

        self(x, generator=generator, tap=keep, **condition)
        return torch.stack(frames)


def _zeroed(layer: nn.Linear) -> nn.Linear:
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def bits_per_dim(nats: float, config: DrawConfig) -> float:
    """Nats per image as bits per subpixel (a likelihood of 8-bit data only under "logistic")."""
    return nats / (config.pixels * math.log(2))


def with_arms(model: DRAW, **arms) -> DRAW:
    """The trained ``model`` with arms beyond the paper added (``scale_canvas=True``, ``prior="learned"``), computing
    exactly what it computes: the arms' layers start at zero, and a new scale canvas starts at the likelihood's
    learned log-scale (s_0 = log s, written to by nothing yet). So an arm is measured as a leg from a trained model,
    beside the same model trained on without it, instead of from scratch (issue 33)."""
    if type(model) is not DRAW:
        raise ValueError(f"with_arms grows DRAW itself, not a {type(model).__name__}")
    unknown = set(arms) - set(_ARMS_OFF)
    if unknown:
        raise ValueError(f"with_arms adds the arms {sorted(_ARMS_OFF)}, not {sorted(unknown)}")
    config = dataclasses.replace(model.config, **arms)
    dropped = [name for name, off in _ARMS_OFF.items() if getattr(model.config, name) != off == getattr(config, name)]
    if dropped:
        raise ValueError(f"with_arms adds arms; it does not take away {', '.join(dropped)}")
    grown = DRAW(config).to(model.c0.device)
    state = dict(model.state_dict())
    if config.scale_canvas and not model.config.scale_canvas:
        state["s0"] = state.pop("log_scale")  # s_0 = the learned log-scale: s_T = s_0 until write_s learns
    missing, unexpected = grown.load_state_dict(state, strict=False)
    assert not unexpected, unexpected  # every trained weight has its place in the grown model
    assert all(name.split(".")[0] in ("p", "write_scale") for name in missing), missing  # only the arms' own layers
    return grown
