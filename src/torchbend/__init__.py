"""torchbend: open a trained PyTorch model and bend its weights and activations, by name, live.

    >>> import torchbend as tb
    >>> bended = tb.BendedModule(model)
    >>> bended.trace("decode", z=z)
    >>> bended.bend(tb.Mask(prob=tb.BendingParameter("keep", 0.2)), "decoder.net.convt0.weight")
    >>> out = bended.decode(z=z)
"""

from . import control, studio  # studio is a callable package: tb.studio(bended, fn, inputs)
from .bended import BendedMethod, BendedModule, BendedWrapper, BendGroup
from .bending.activations import InterpolateActivation, ThresholdActivation
from .bending.affine import Affine, Bias, Scale
from .bending.callback import BendingCallback, CallbackChain, check_flag, check_number
from .bending.capture import Capture, InterpolationFromCapture
from .bending.lambda_callback import Lambda
from .bending.parameter import BendingParameter, Expression
from .bending.stochastic import Mask, Normal, OrderedMask, Permute
from .bending.target import Target
from .config import BendingConfig, register_callback
from .control.modulators import LFO, Envelope, Ramp
from .engine import Bend, Engine
from .errors import BendingError, ConfigError, ExportError, SpecializationError, TraceError, UnknownNameError
from .script_module import BentScriptModule
from .tracing.mark import mark

__version__ = "0.1.0"

for _callback in (Scale, Bias, Affine, Mask, OrderedMask, Normal, Permute, Lambda, ThresholdActivation,
                  InterpolateActivation, Capture, InterpolationFromCapture):
    register_callback(_callback)
del _callback

__all__ = [
    "Affine",
    "Bend",
    "BendedMethod",
    "BendedModule",
    "BendedWrapper",
    "BendGroup",
    "BendingCallback",
    "BendingConfig",
    "BendingError",
    "BendingParameter",
    "BentScriptModule",
    "Bias",
    "CallbackChain",
    "ConfigError",
    "Envelope",
    "LFO",
    "Ramp",
    "Capture",
    "Engine",
    "ExportError",
    "Expression",
    "InterpolateActivation",
    "InterpolationFromCapture",
    "Lambda",
    "Mask",
    "Normal",
    "OrderedMask",
    "Permute",
    "Scale",
    "SpecializationError",
    "Target",
    "ThresholdActivation",
    "TraceError",
    "UnknownNameError",
    "check_flag",
    "check_number",
    "control",
    "mark",
    "register_callback",
    "studio",
]
