"""A plain convolutional VAE: the one-shot generator DRAW is measured against (issue 33).

DRAW paints its image over T steps; the standard VAE (Kingma & Welling 2014) with a convolutional encoder and
decoder writes it in one. This is a small, standard one: stride-2 convolutions down to a coarse grid, a
linear layer to (μ, log σ) of one Gaussian z, the prior N(0, I), and the mirror image with transposed
convolutions up to canvas logits of DRAW's shape. The canvas goes through the same D(x | c) as DRAW's
final canvas c_T (``drawviz.likelihood``, with the same learned parameters, e.g. the logistic's per-subpixel
log-scale) and starts from a learned c_0 as DRAW's does, so its bound is measured on the same scale and a
blur page can put its samples beside DRAW's.

To the training loop, evaluation, checkpoints and recordings it is a DRAW with one step (T = 1): ``forward``
returns the same :class:`drawviz.model.DrawOutput` with a KL of shape (1, batch), and it taps the quantities
it has (μ, σ, z, KL, canvas) at t = 1. It has no attention, no error image and no LSTM states; the figures
that need them say so (``drawviz.kinds.lacks``), and the fast path, which replays DRAW's equations, refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from . import likelihood as _likelihood
from .checks import positive_int
from .model import ConfigFields, DrawOutput, InputError, check_images
from .quantities import CANVAS, KL, MU, SIGMA_Z, Z, Tap, identity

__all__ = ["ConvVAEConfig", "PRESETS", "ConvVAE"]


@dataclass(frozen=True)
class ConvVAEConfig(ConfigFields):
    """Everything that fixes the network's shape. Defaults: the CIFAR-10 model (preset ``cifar10-convvae``)."""

    height: int = 32
    width: int = 32
    channels: int = 3
    z_size: int = 128  # latent dimensions (one z, drawn once)
    filters: int = 64  # channels of the first convolution; each later one doubles them
    layers: int = 3  # stride-2 convolutions (the encoder) and transposed ones (the decoder): 32 -> 4 in three
    likelihood: str = "logistic"  # D(x | c), as DrawConfig.likelihood: "logistic" for 8-bit values, "bernoulli" for 0/1

    # not fields: what the per-step quantities and figures ask of any kind
    T = 1  # one step: the whole image at once
    attention = False
    read_images = 1  # the encoder sees the image only (no error image)
    taps = (MU, SIGMA_Z, Z, KL, CANVAS)  # the quantities it computes (drawviz.quantities)

    def __post_init__(self):
        for name in ("height", "width", "channels", "z_size", "filters", "layers"):
            object.__setattr__(self, name, positive_int(getattr(self, name), f"ConvVAEConfig.{name}", ""))
        step = 2**self.layers
        if self.height % step or self.width % step:
            raise ValueError(
                f"ConvVAEConfig: {self.layers} stride-2 layers need a height and width divisible by {step}, "
                f"got {self.height}×{self.width}; use fewer layers (e.g. 2 for 28×28)"
            )
        if self.likelihood not in _likelihood.LIKELIHOODS:
            raise ValueError(
                f"ConvVAEConfig.likelihood must be one of {', '.join(_likelihood.LIKELIHOODS)}, got {self.likelihood!r}"
            )

    @property
    def grid(self) -> tuple[int, int, int]:
        """The coarse feature map between the convolutions and z: (channels, height, width)."""
        step = 2**self.layers
        return (self.filters * 2 ** (self.layers - 1), self.height // step, self.width // step)

    def describe(self) -> str:
        """The network in one line (a model card's config row)."""
        widths = ", ".join(str(self.filters * 2**i) for i in range(self.layers))
        c, h, w = self.grid
        return (
            f"{self.height}×{self.width}×{self.channels}, one step (T = 1), z {self.z_size}; encoder {self.layers} "
            f"4×4 convolutions of stride 2 ({widths} channels, ReLU) to {c}×{h}×{w}, then linear to (μ, log σ); "
            f"decoder the mirror (linear, transposed convolutions) to the canvas logits c = c_0 + decoder(z); no attention"
        )

    @classmethod
    def presets(cls) -> dict:
        return PRESETS


# One per dataset with a DRAW preset of the same images and likelihood; sizes are the common small ones
# (CIFAR-10: 2.9 M parameters, DRAW's cifar10 preset 2.7 M)
_CIFAR = ConvVAEConfig()
_MNIST = ConvVAEConfig(28, 28, 1, z_size=32, filters=32, layers=2, likelihood="bernoulli")
PRESETS: dict[str, ConvVAEConfig] = {
    "cifar10-convvae": _CIFAR,
    "svhn-convvae": _CIFAR,
    "mnist-convvae": _MNIST,
    "fashion-mnist-convvae": _MNIST,
}


class ConvVAE(nn.Module):
    """Encoder q(z | x): ``layers`` × (4×4 conv, stride 2, ReLU), then a linear map to (μ, log σ).
    Decoder: a linear map from z to the coarse grid, ReLU, then ``layers`` 4×4 transposed convolutions of
    stride 2 (ReLU between them) to the canvas c = c_0 + decoder(z), logits of D(x | c)."""

    def __init__(self, config: ConvVAEConfig = ConvVAEConfig()):
        super().__init__()
        self.config = c = config
        widths = [c.filters * 2**i for i in range(c.layers)]  # e.g. 64, 128, 256
        grid = c.grid
        down, ins = [], c.channels
        for w in widths:  # each halves the height and width
            down += [nn.Conv2d(ins, w, 4, stride=2, padding=1), nn.ReLU()]
            ins = w
        self.encoder = nn.Sequential(*down, nn.Flatten())  # (batch, C, H, W) -> (batch, grid numel)
        n = grid[0] * grid[1] * grid[2]
        self.q = nn.Linear(n, 2 * c.z_size)  # -> (μ, log σ)
        up = [nn.Linear(c.z_size, n), nn.ReLU(), nn.Unflatten(1, grid)]
        for w_in, w_out in zip(widths[::-1], widths[-2::-1] + [c.channels]):  # each doubles them
            up += [nn.ConvTranspose2d(w_in, w_out, 4, stride=2, padding=1), nn.ReLU()]
        self.decoder = nn.Sequential(*up[:-1])  # no ReLU on the logits: (batch, z) -> (batch, C, H, W)
        self.c0 = nn.Parameter(torch.zeros(c.image_shape))  # the canvas before its one step, as DRAW's c_0
        # what the likelihood learns beside the network, exactly as DRAW registers it (the logistic's log-scale)
        self._likelihood_parameters = tuple(_likelihood.get(c.likelihood).parameters(c))
        for name, initial in _likelihood.get(c.likelihood).parameters(c).items():
            self.register_parameter(name, nn.Parameter(initial))

    def extra_repr(self) -> str:
        return f"config={self.config}"

    def nll(self, canvas: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """−log D(x | c) per image (batch,), under the config's likelihood with its learned parameters (as DRAW's eq. 9)."""
        return _likelihood.nll(
            self.config.likelihood, canvas, x, **{name: getattr(self, name) for name in self._likelihood_parameters}
        )

    def check_eps(self, eps: torch.Tensor, batch: int) -> None:
        """Raise InputError unless eps is the (1, batch, z_size) noise of one pass."""
        expected = (1, batch, self.config.z_size)
        if not isinstance(eps, torch.Tensor) or tuple(eps.shape) != expected:
            got = tuple(eps.shape) if isinstance(eps, torch.Tensor) else type(eps).__name__
            raise InputError(
                f"eps must have shape (1, batch, z_size) = {expected}, a fresh N(0, I) draw (one step); "
                f"got {got} (model.sample_eps(batch) makes one)"
            )

    def check_dtype(self, x: torch.Tensor) -> None:
        """Raise InputError unless x has the model's dtype (float32 unless the model was converted)."""
        if x.dtype != self.c0.dtype:
            raise InputError(f"the images are {x.dtype} but the model is {self.c0.dtype}; use x.to({self.c0.dtype})")

    def sample_eps(self, batch: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """A standard-normal ε for the one step: (1, batch, z_size)."""
        return torch.randn(1, batch, self.config.z_size, generator=generator, device=self.c0.device, dtype=self.c0.dtype)

    def forward(
        self,
        x: torch.Tensor,
        eps: Optional[torch.Tensor] = None,
        *,
        generator: Optional[torch.Generator] = None,
        tap: Optional[Tap] = None,
        check: bool = True,
    ) -> DrawOutput:
        """Reconstruct x (batch, C, H, W) in [0, 1]; the negative ELBO's terms, in DRAW's form.

        eps: (1, batch, z_size), drawn from ``generator`` when not given. tap: as DRAW's, at t = 1, for μ, σ, z,
        the KL and the canvas (logits); what it returns is used in their place.
        """
        if check:
            check_images(x, self.config)
        batch = x.shape[0]
        if eps is None:
            eps = self.sample_eps(batch, generator)
        self.check_eps(eps, batch)
        self.check_dtype(x)
        tap = tap or identity
        mu, log_sigma = self.q(self.encoder(2 * x - 1)).chunk(2, 1)  # inputs centred on 0: (batch, z_size) each
        mu = tap(MU, 1, mu)
        sigma = torch.exp(log_sigma)
        tapped = tap(SIGMA_Z, 1, sigma)
        if tapped is not sigma:  # replaced: its log enters the KL
            sigma, log_sigma = tapped, tapped.log()
        z = tap(Z, 1, mu + sigma * eps[0])  # reparameterised
        # KL(N(μ, σ²) || N(0, I)) in closed form, summed over z: (batch,)
        kl = tap(KL, 1, 0.5 * (mu.pow(2) + sigma.pow(2) - 2 * log_sigma - 1).sum(1))
        canvas = tap(CANVAS, 1, self.c0 + self.decoder(z))  # (batch, C, H, W) logits
        nll = self.nll(canvas, x)
        return DrawOutput((nll + kl).mean(), nll, kl[None], canvas)  # kl: (1, batch), one step

    def figures(self, x: torch.Tensor, labels=None, generator: Optional[torch.Generator] = None) -> dict:
        """Per image (batch,), what evaluation averages: the negative ELBO and its two terms, in nats."""
        out = self(x, generator=generator, check=False)
        kl = out.kl.sum(0)
        return {"nll_bound": out.nll + kl, "recon_nll": out.nll, "kl": kl}

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, *, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """σ(c) of the reconstruction of x, as DRAW's canvas sequence of one step: (1, batch, C, H, W)."""
        return torch.sigmoid(self(x, generator=generator).canvas)[None]

    @torch.no_grad()
    def generate(
        self,
        n: int,
        *,
        generator: Optional[torch.Generator] = None,
        eps: Optional[torch.Tensor] = None,
        tap: Optional[Tap] = None,
    ) -> torch.Tensor:
        """Draw n images from the prior: σ(c) for z ~ N(0, I), as (1, n, C, H, W) (DRAW's canvases, one step)."""
        try:
            n = positive_int(n, "n", "a positive number of samples")
        except ValueError as err:
            raise InputError(str(err)) from None
        if eps is None:
            eps = self.sample_eps(n, generator)
        self.check_eps(eps, n)
        tap = tap or identity
        z = tap(Z, 1, eps[0])
        canvas = tap(CANVAS, 1, self.c0 + self.decoder(z))
        return torch.sigmoid(canvas)[None]
