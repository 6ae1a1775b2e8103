"""Example models, with trained weights shipped in the package."""

from .audio_vae import AudioVAE, load_audio_vae, make_audio_vae
from .mnist_vae import MNISTVAE, load_mnist_vae, make_mnist_vae
from .streaming import StreamingModel, make_streaming_model

__all__ = [
    "AudioVAE",
    "MNISTVAE",
    "StreamingModel",
    "load_audio_vae",
    "load_mnist_vae",
    "make_audio_vae",
    "make_mnist_vae",
    "make_streaming_model",
]
