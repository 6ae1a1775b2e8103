"""Example models, with trained weights shipped in the package."""

from .mnist_vae import MNISTVAE, load_mnist_vae, make_mnist_vae

__all__ = ["MNISTVAE", "load_mnist_vae", "make_mnist_vae"]
