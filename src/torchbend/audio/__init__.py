"""Audio for torchbend: read and write sounds, picture them, load RAVE models.

    >>> import torchbend.audio as tba
    >>> wav = tba.read("in.wav", sample_rate=16000)          # (channels, samples) float tensor
    >>> tba.write("out.wav", wav, 16000)
    >>> fig = tba.plot_audio_activations([plain, bent], 16000, titles=["plain", "bent"], path="bends.png")
    >>> rave = tba.load_rave("runs/my_rave")                   # a tb.BendedModule, streaming

Needs the ``audio`` extra: ``pip install 'torchbend[audio]'`` (soundfile, cached-conv, matplotlib);
each is imported only when a function needs it.
"""

from .io import read, resample, write
from .plot import plot_audio_activations, plot_spectrogram, plot_waveform, spectrogram
from .rave import load_rave

__all__ = [
    "load_rave",
    "plot_audio_activations",
    "plot_spectrogram",
    "plot_waveform",
    "read",
    "resample",
    "spectrogram",
    "write",
]
