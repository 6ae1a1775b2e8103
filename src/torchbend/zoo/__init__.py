"""Example models."""

from .mnist_vae import MNISTVAE, make_mnist_vae

__all__ = ["MNISTVAE", "make_mnist_vae"]
