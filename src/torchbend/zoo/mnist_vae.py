"""The tutorial's MNIST VAE: a conv encoder, MLPs, and a transposed-conv decoder.

    >>> vae = make_mnist_vae()
    >>> mu, var = vae.encode(torch.rand(4, 1, 28, 28))       # (4, 64) each
    >>> vae.decode(mu).shape
    torch.Size([4, 1, 28, 28])

Names are chosen so that the tutorial's patterns resolve: weights ``decoder.net.convt0.weight``
... ``decoder.net.convt3.weight``; activations ``decoder_net_convt0`` ... ``decoder_net_convt3``
on ``decode``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

CHANNELS = (16, 32, 64, 128)
HIDDEN = 256
LATENT = 64
# spatial size after each encoder conv: 28 -> 14 -> 7 -> 4 -> 2; the decoder mirrors it
_OUTPUT_PADDING = (1, 0, 1, 1)


class Encoder(nn.Module):
    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c in CHANNELS:
            layers += [nn.Conv2d(c_in, c, 5, 2, 2), nn.BatchNorm2d(c), nn.ReLU(), nn.Dropout2d(dropout)]
            c_in = c
        self.net = nn.Sequential(*layers)
        self.mlp = nn.Sequential(
            nn.Flatten(), nn.Linear(CHANNELS[-1] * 2 * 2, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 2 * LATENT)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.net(x))


class Decoder(nn.Module):
    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(LATENT, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, CHANNELS[-1] * 2 * 2), nn.ReLU()
        )
        self.net = nn.Sequential()
        channels = (*reversed(CHANNELS), 1)
        for i in range(4):
            self.net.add_module(
                f"convt{i}",
                nn.ConvTranspose2d(channels[i], channels[i + 1], 5, 2, 2, output_padding=_OUTPUT_PADDING[i]),
            )
            if i < 3:
                self.net.add_module(f"bn{i}", nn.BatchNorm2d(channels[i + 1]))
                self.net.add_module(f"relu{i}", nn.ReLU())
                self.net.add_module(f"dropout{i}", nn.Dropout2d(dropout))
        self.net.add_module("sigmoid", nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mlp(z).view(z.shape[0], CHANNELS[-1], 2, 2)
        return self.net(h)


class MNISTVAE(nn.Module):
    """``encode(x) -> (mu, var)``, ``decode(z) -> image``, ``forward(x) -> reconstruction``."""

    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = Encoder(dropout)
        self.decoder = Decoder(dropout)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, pre_var = self.encoder(x).chunk(2, dim=-1)
        return mu, F.softplus(pre_var)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu, var = self.encode(x)
        z = mu + var.sqrt() * torch.randn_like(mu) if self.training else mu
        return self.decode(z)


def make_mnist_vae(dropout: float = 0.1) -> MNISTVAE:
    """The VAE architecture with fresh random weights (see `load_mnist_vae` for trained ones)."""
    return MNISTVAE(dropout)


WEIGHTS = Path(__file__).with_name("weights") / "mnist_vae.pt"


def load_mnist_vae() -> MNISTVAE:
    """The VAE with the trained weights shipped in the package, in eval mode.

    The weights come from ``python -m torchbend.zoo.train_mnist_vae``.
    """
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    vae = make_mnist_vae()
    vae.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return vae.eval()
