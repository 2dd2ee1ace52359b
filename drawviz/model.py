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
    READ_WINDOW,
    SIGMA_Z,
    WRITE_PATCH,
    WRITE_WINDOW,
    X_HAT,
    Z,
    Tap,
    identity,
)

__all__ = ["ConfigFields", "DrawConfig", "PRESETS", "DRAW", "DrawOutput", "InputError", "check_images"]


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
    kl: torch.Tensor  # (T, batch) KL(Q(z_t | h_enc_t) || N(0, I)) per step, eq. 11
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
        self._likelihood_parameters = tuple(_likelihood.get(c.likelihood).parameters(c))
        for name, initial in _likelihood.get(c.likelihood).parameters(c).items():
            self.register_parameter(name, nn.Parameter(initial))

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
    ) -> DrawOutput:
        """Reconstruct x (batch, C, H, W) in [0, 1]; return the loss terms of eq. 9-12.

        eps: (T, batch, z_size) noise, drawn from ``generator`` when not given.
        tap: called as tap(name, t, value) with every quantity of drawviz.quantities as step
          t = 1..T computes it; what it returns is used in its place (a recorder returns the value).
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
            z = tap(Z, t, mu + sigma * eps[t - 1])  # eq. 6, reparameterised
            # KL(N(μ, σ²) || N(0, 1)) = ½(μ² + σ² − log σ² − 1), summed over z: eq. 11 per step.
            kls.append(tap(KL, t, 0.5 * (mu.pow(2) + sigma.pow(2) - 2 * log_sigma - 1).sum(1)))
            h_dec, c_dec = self.decoder(z, (h_dec, c_dec))  # eq. 7
            h_dec = tap(H_DEC, t, h_dec)
            canvas = tap(CANVAS, t, canvas + self._write(t, h_dec, tap))  # eq. 8
        nll = self.nll(canvas, x)  # eq. 9
        kl = torch.stack(kls)
        return DrawOutput((nll + kl.sum(0)).mean(), nll, kl, canvas)

    def figures(self, x: torch.Tensor, labels=None, generator: Optional[torch.Generator] = None) -> dict:
        """Per image (batch,), what evaluation averages: the negative ELBO (eq. 12) and its two terms, in nats."""
        out = self(x, generator=generator, check=False)
        kl = out.kl.sum(0)
        return {"nll_bound": out.nll + kl, "recon_nll": out.nll, "kl": kl}

    def _read(self, t: int, x, x_hat, h_dec, tap: Tap) -> torch.Tensor:
        """r_t, eq. 4 (attentive, eq. 27) or 17 (the whole image)."""
        if not self.config.attention:
            return self.read(x, x_hat, h_dec)[0]
        window = tap(READ_WINDOW, t, self.read.window(h_dec))
        return tap(GLIMPSE, t, self.read.glimpse(x, x_hat, window)).flatten(1)

    def _write(self, t: int, h_dec, tap: Tap) -> torch.Tensor:
        """write(h_dec_t), the canvas update: eq. 29 (attentive) or 18 (the whole canvas)."""
        if not self.config.attention:
            return tap(WRITE_PATCH, t, self.write(h_dec)[0])
        window = tap(WRITE_WINDOW, t, self.write.window(h_dec))
        return self.write.paint(tap(WRITE_PATCH, t, self.write.patch_from(h_dec)), window)

    def nll(self, canvas: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """L^x = −log D(x | c_T) per image (batch,), eq. 9, under the config's likelihood."""
        return _likelihood.nll(
            self.config.likelihood, canvas, x, **{name: getattr(self, name) for name in self._likelihood_parameters}
        )

    @torch.no_grad()
    def generate(
        self,
        n: int,
        *,
        generator: Optional[torch.Generator] = None,
        eps: Optional[torch.Tensor] = None,
        tap: Optional[Tap] = None,
    ) -> torch.Tensor:
        """Draw n images from the prior (eq. 13-16). Returns canvases σ(c_t): (T, n, C, H, W).

        tap: as in forward, for the quantities generation computes (z, h_dec, write, canvas)."""
        try:
            n = positive_int(n, "n", "a positive number of samples")
        except ValueError as err:
            raise InputError(str(err)) from None
        if eps is None:
            eps = self.sample_eps(n, generator)
        self.check_eps(eps, n)
        tap = tap or identity
        canvas, _, (h_dec, c_dec) = self.initial_state(n)
        frames = []
        for t in range(1, self.config.T + 1):
            z = tap(Z, t, eps[t - 1])  # z_t ~ N(0, I), eq. 13
            h_dec, c_dec = self.decoder(z, (h_dec, c_dec))
            h_dec = tap(H_DEC, t, h_dec)
            canvas = tap(CANVAS, t, canvas + self._write(t, h_dec, tap))
            frames.append(torch.sigmoid(canvas))
        return torch.stack(frames)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, *, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Canvas sequence σ(c_t) while reconstructing x: (T, batch, C, H, W)."""
        frames = []

        def keep(name, t, value):
            if name == CANVAS:
                frames.append(torch.sigmoid(value))
            return value

        self(x, generator=generator, tap=keep)
        return torch.stack(frames)


def bits_per_dim(nats: float, config: DrawConfig) -> float:
    """Nats per image as bits per subpixel (a likelihood of 8-bit data only under "logistic")."""
    return nats / (config.pixels * math.log(2))
