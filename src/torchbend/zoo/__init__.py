"""Example models, with trained weights shipped in the package."""

from .mnist_vae import MNISTVAE, load_mnist_vae, make_mnist_vae
from .streaming import StreamingModel, make_streaming_model

__all__ = ["MNISTVAE", "StreamingModel", "load_mnist_vae", "make_mnist_vae", "make_streaming_model"]
