"""torchbend: open a trained PyTorch model and bend its weights and activations, by name, live.

>>> import torchbend as tb
>>> bended = tb.BendedModule(model)
>>> bended.trace("decode", z=z)
>>> bended.bend(tb.Mask(prob=tb.BendingParameter("keep", 0.2)), "decoder.net.convt0.weight")
>>> out = bended.decode(z=z)
"""

from typing import Any

from .apps import control
from .apps.control.modulators import LFO, Envelope, Ramp
from .apps.studio import StudioState, studio
from .bended import BendedMethod, BendedModule, BendedWrapper, BendGroup
from .bending.activations import InterpolateActivation, ThresholdActivation
from .bending.affine import Affine, Bias, LowRank, Scale
from .bending.callback import BendingCallback, CallbackChain, check_flag
from .bending.capture import Capture, InterpolationFromCapture
from .bending.checks import check_number
from .bending.lambda_callback import Lambda
from .bending.morphology import Blur, Dilate, Erode, Sobel
from .bending.parameter import BendingParameter, Expression
from .bending.selection import Select
from .bending.spatial import Flip, Rotate, Translate, Zoom
from .bending.stochastic import Mask, Normal, OrderedMask, Permute
from .bending.target import Target
from .bending.trainable import Trainable
from .bending.values import Ablate, BinaryThreshold, Clamp, Invert, Quantize
from .compare import compare_outs, compare_state_dict_tensors
from .config import BendingConfig, register_callback
from .core.bends import Bend
from .core.engine import Engine
from .errors import (
    BendingError,
    ColdStateError,
    ConfigError,
    ExportError,
    SpecializationError,
    TraceError,
    UnknownNameError,
)
from .optimizing import Optimization, l1, norm_bound, optimize
from .torchscript.script_module import BentScriptModule
from .tracing.mark import mark

__version__ = "0.1.0"

for _callback in (
    Scale,
    Bias,
    Affine,
    LowRank,
    Mask,
    OrderedMask,
    Normal,
    Permute,
    Lambda,
    ThresholdActivation,
    InterpolateActivation,
    Capture,
    InterpolationFromCapture,
    Rotate,
    Translate,
    Zoom,
    Flip,
    Erode,
    Dilate,
    Blur,
    Sobel,
    Invert,
    BinaryThreshold,
    Ablate,
    Clamp,
    Quantize,
    Select,
):
    register_callback(_callback)
del _callback

# Submodules and functions that need optional dependencies load on first use, so `import torchbend`
# needs only torch and numpy: `tb.zoo`, `tb.plot`, `tb.cluster_features`, `tb.animate`, ...
# (`tb.distributions` compiles its classes with TorchScript when imported)
_LAZY_MODULES = {
    "zoo": "zoo",
    "plot": "plot",
    "datasets": "datasets",
    "clustering": "clustering",
    "curves": "curves",
    "demo": "apps.demo",
    "audio": "audio",
    "distributions": "distributions",
}
_LAZY_NAMES = {
    "cluster_features": "clustering",
    "FeatureGroups": "clustering",
    "FeatureGroup": "clustering",
    "sweep": "sweeping",
    "animate": "sweeping",
    "load": "loading",
    **dict.fromkeys(["grid", "run_grid", "stream_grid", "GridPoint", "GridResult"], "apps.grids"),
}


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY_MODULES:
        return importlib.import_module(f".{_LAZY_MODULES[name]}", __name__)
    if name in _LAZY_NAMES:
        module = importlib.import_module(f".{_LAZY_NAMES[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'torchbend' has no attribute {name!r}")


__all__ = [
    "Ablate",
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
    "BinaryThreshold",
    "Blur",
    "CallbackChain",
    "Capture",
    "Clamp",
    "ConfigError",
    "Dilate",
    "Engine",
    "Envelope",
    "Erode",
    "ExportError",
    "Expression",
    "FeatureGroup",
    "FeatureGroups",
    "Flip",
    "InterpolateActivation",
    "InterpolationFromCapture",
    "Invert",
    "Lambda",
    "LowRank",
    "Mask",
    "Normal",
    "Optimization",
    "OrderedMask",
    "Permute",
    "Quantize",
    "Rotate",
    "Scale",
    "Select",
    "Sobel",
    "SpecializationError",
    "ColdStateError",
    "Target",
    "ThresholdActivation",
    "TraceError",
    "Trainable",
    "Translate",
    "UnknownNameError",
    "LFO",
    "Ramp",
    "Zoom",
    "GridPoint",
    "GridResult",
    "animate",
    "check_flag",
    "check_number",
    "compare_outs",
    "compare_state_dict_tensors",
    "cluster_features",
    "control",
    "l1",
    "mark",
    "norm_bound",
    "optimize",
    "grid",
    "load",
    "register_callback",
    "run_grid",
    "stream_grid",
    "studio",
    "StudioState",
    "sweep",
]
