"""Optional dependencies: import one, or fail with the ``pip install torchbend[extra]`` that provides it.

>>> plt = require("matplotlib.pyplot", "plot")      # MissingExtraError names `pip install torchbend[plot]`
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import BendingError


class MissingExtraError(BendingError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def require(module: str, extra: str, purpose: str = "") -> ModuleType:
    """Import `module`, or raise `MissingExtraError` naming ``pip install torchbend[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        what = f" {purpose}" if purpose else ""
        raise MissingExtraError(
            f"{module.split('.')[0]} is needed{what} but is not installed: pip install 'torchbend[{extra}]'"
        ) from error
