"""Draw the picture of the shipped MNIST VAE in docs/models.md: samples, test digits, reconstructions.

python examples/mnist_vae_samples.py [docs/mnist_vae_samples.png]
"""

import sys

import torch

from torchbend.datasets import mnist
from torchbend.plot import plot_image_activations
from torchbend.zoo import load_mnist_vae


def main(path: str = "docs/mnist_vae_samples.png") -> None:
    torch.manual_seed(0)
    vae = load_mnist_vae()
    with torch.no_grad():
        samples = vae.decode(torch.randn(32, 64))
        test = mnist("test").images[:16]
        reconstructions = vae(test)
    plot_image_activations(
        [samples, test, reconstructions],
        n_rows=2,
        path=path,
        titles=["samples from N(0, I)", "test digits", "reconstructions"],
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main(*sys.argv[1:])
