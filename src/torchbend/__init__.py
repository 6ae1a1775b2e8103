"""torchbend: open a trained PyTorch model and bend its weights and activations, by name, live.

    >>> import torchbend as tb
    >>> bended = tb.BendedModule(model)
    >>> bended.trace("decode", z=z)
    >>> bended.bend(tb.Mask(prob=tb.BendingParameter("keep", 0.2)), "decoder.net.convt0.weight")
    >>> out = bended.decode(z=z)
"""

from .bended import Bend, BendedMethod, BendedModule, BendGroup
from .bending.activations import InterpolateActivation, ThresholdActivation
from .bending.affine import Affine, Bias, Scale
from .bending.callback import BendingCallback, CallbackChain
from .bending.capture import Capture, InterpolationFromCapture
from .bending.lambda_callback import Lambda
from .bending.parameter import BendingParameter, Expression
from .bending.stochastic import Mask, Normal, Permute
from .bending.target import Target
from .config import BendingConfig, ConfigError, register_callback
from .errors import BendingError, TraceError, UnknownNameError
from .tracing.mark import mark
from .tracing.tracer import SpecializationError

__version__ = "0.1.0"

for _callback in (Scale, Bias, Affine, Mask, Normal, Permute, Lambda, ThresholdActivation, InterpolateActivation,
                  Capture, InterpolationFromCapture):
    register_callback(_callback)
del _callback


def __getattr__(name: str) -> object:
    """``tb.audio`` and ``tb.zoo`` are imported on first use (their extras stay optional)."""
    if name in ("audio", "zoo"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'torchbend' has no attribute {name!r}")

__all__ = [
    "Affine",
    "Bend",
    "BendedMethod",
    "BendedModule",
    "BendGroup",
    "BendingCallback",
    "BendingConfig",
    "BendingError",
    "BendingParameter",
    "Bias",
    "CallbackChain",
    "ConfigError",
    "Capture",
    "Expression",
    "InterpolateActivation",
    "InterpolationFromCapture",
    "Lambda",
    "Mask",
    "Normal",
    "Permute",
    "Scale",
    "SpecializationError",
    "Target",
    "ThresholdActivation",
    "TraceError",
    "UnknownNameError",
    "mark",
    "register_callback",
]
