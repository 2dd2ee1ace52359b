"""The baseline: DRAW written the way public PyTorch ports write it.

One nn.LSTMCell call per LSTM per step, a filterbank built from scratch and two batched
matmuls per read and per write, autograd over every op.  Same network and parameters as
drawviz.model.DRAW (load_from copies them), so the benchmark can check it computes the same
loss before timing it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class EagerDRAW(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = c = cfg
        read_size = 2 * c.channels * (c.read_n**2 if c.attention else c.height * c.width)
        self.encoder = nn.LSTMCell(read_size + c.dec_size, c.enc_size)
        self.decoder = nn.LSTMCell(c.z_size, c.dec_size)
        self.q = nn.Linear(c.enc_size, 2 * c.z_size)
        if c.attention:
            self.read_att = nn.Linear(c.dec_size, 5)
            self.write_att = nn.Linear(c.dec_size, 5)
            self.write_patch = nn.Linear(c.dec_size, c.channels * c.write_n**2)
        else:
            self.write_full = nn.Linear(c.dec_size, c.channels * c.height * c.width)
        self.c0 = nn.Parameter(torch.zeros(c.channels, c.height, c.width))
        self.h_enc0 = nn.Parameter(torch.zeros(c.enc_size))
        self.h_dec0 = nn.Parameter(torch.zeros(c.dec_size))

    @torch.no_grad()
    def load_from(self, draw):
        """Copy a drawviz DRAW's parameters (the same network, other names)."""
        pairs = [(self.encoder, draw.encoder), (self.decoder, draw.decoder), (self.q, draw.q)]
        if self.cfg.attention:
            pairs += [
                (self.read_att, draw.read.params),
                (self.write_att, draw.write.params),
                (self.write_patch, draw.write.patch),
            ]
        else:
            pairs += [(self.write_full, draw.write.linear)]
        for mine, theirs in pairs:
            mine.load_state_dict(theirs.state_dict())
        for name in ("c0", "h_enc0", "h_dec0"):
            getattr(self, name).copy_(getattr(draw, name))
        return self

    def attention(self, linear, h_dec, N):
        """Window parameters -> filterbanks F_x (b, N, A), F_y (b, N, B) and γ (b,)."""
        c = self.cfg
        gx_, gy_, log_sigma2, log_delta, log_gamma = linear(h_dec).split(1, 1)
        gx = (c.width + 1) / 2 * (gx_ + 1)
        gy = (c.height + 1) / 2 * (gy_ + 1)
        delta = (max(c.width, c.height) - 1) / max(N - 1, 1) * torch.exp(log_delta)
        sigma2 = torch.exp(log_sigma2)
        grid = torch.arange(1, N + 1, dtype=h_dec.dtype).view(1, -1) - N / 2 - 0.5
        mu_x = gx + grid * delta  # (b, N)
        mu_y = gy + grid * delta
        a = torch.arange(1, c.width + 1, dtype=h_dec.dtype).view(1, 1, -1)
        b = torch.arange(1, c.height + 1, dtype=h_dec.dtype).view(1, 1, -1)
        Fx = torch.exp(-((a - mu_x.unsqueeze(2)) ** 2) / (2 * sigma2.unsqueeze(2)))
        Fy = torch.exp(-((b - mu_y.unsqueeze(2)) ** 2) / (2 * sigma2.unsqueeze(2)))
        Fx = Fx / Fx.sum(2, keepdim=True).clamp_min(1e-8)
        Fy = Fy / Fy.sum(2, keepdim=True).clamp_min(1e-8)
        return Fx, Fy, torch.exp(log_gamma).view(-1)

    def read(self, x, x_hat, h_dec):
        if not self.cfg.attention:
            return torch.cat((x.flatten(1), x_hat.flatten(1)), 1)
        b, C, H, W = x.shape
        N = self.cfg.read_n
        Fx, Fy, gamma = self.attention(self.read_att, h_dec, N)
        Fy_c = Fy.repeat_interleave(C, 0)  # (b·C, N, H)
        Fx_t = Fx.transpose(1, 2).repeat_interleave(C, 0)  # (b·C, W, N)
        glimpses = [torch.bmm(torch.bmm(Fy_c, img.reshape(b * C, H, W)), Fx_t).view(b, -1) for img in (x, x_hat)]
        return torch.cat(glimpses, 1) * gamma.view(-1, 1)

    def write(self, h_dec):
        c = self.cfg
        b = h_dec.shape[0]
        if not c.attention:
            return self.write_full(h_dec).view(b, c.channels, c.height, c.width)
        N = c.write_n
        w = self.write_patch(h_dec).view(b * c.channels, N, N)
        Fx, Fy, gamma = self.attention(self.write_att, h_dec, N)
        Fy_t = Fy.transpose(1, 2).repeat_interleave(c.channels, 0)
        Fx_c = Fx.repeat_interleave(c.channels, 0)
        image = torch.bmm(torch.bmm(Fy_t, w), Fx_c).view(b, c.channels, c.height, c.width)
        return image / gamma.view(-1, 1, 1, 1)

    def forward(self, x, eps):
        b = x.shape[0]
        canvas = self.c0.expand(b, -1, -1, -1)
        h_enc, c_enc = self.h_enc0.expand(b, -1), x.new_zeros(b, self.cfg.enc_size)
        h_dec, c_dec = self.h_dec0.expand(b, -1), x.new_zeros(b, self.cfg.dec_size)
        kl = 0
        for t in range(self.cfg.T):
            x_hat = x - torch.sigmoid(canvas)
            r = self.read(x, x_hat, h_dec)
            h_enc, c_enc = self.encoder(torch.cat((r, h_dec), 1), (h_enc, c_enc))
            mu, log_sigma = self.q(h_enc).chunk(2, 1)
            sigma = torch.exp(log_sigma)
            z = mu + sigma * eps[t]
            h_dec, c_dec = self.decoder(z, (h_dec, c_dec))
            canvas = canvas + self.write(h_dec)
            kl = kl + 0.5 * (mu**2 + sigma**2 - 2 * log_sigma - 1).sum(1)
        nll = F.binary_cross_entropy_with_logits(canvas, x, reduction="none").flatten(1).sum(1)
        return (nll + kl).mean()
