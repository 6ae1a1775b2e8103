"""What a callback is attached to: one weight, or one activation of one traced method.

>>> t = Target("decoder_net_convt0", "activation", (16, 64, 7, 7), torch.float32, method="decode")
>>> t.qualified
'decode:decoder_net_convt0'
>>> t.state_shape(None)          # batch-agnostic: size 1 on the batch axis
(1, 64, 7, 7)
>>> t.state_shape(1)             # one draw per channel
(1, 64, 1, 1)
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Target:
    """A bent tensor's identity and its traced metadata.

    `name` is a weight name (``decoder.net.convt0.weight``) or an activation's node name, and
    `method` the traced method of an activation; `kind` is ``"weight"`` or ``"activation"``.
    For an activation, axis 0 is the batch axis.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    method: str | None = None

    @property
    def qualified(self) -> str:
        """``"<method>:<node>"`` for an activation, the weight name for a weight (names saved in configs)."""
        return f"{self.method}:{self.name}" if self.method is not None else self.name

    @property
    def batched(self) -> bool:
        """True when axis 0 is a batch axis, whose size may change from call to call."""
        return self.kind == "activation" and len(self.shape) > 0

    def normalize_dims(self, dim: int | Sequence[int]) -> tuple[int, ...]:
        """`dim` as a tuple of non-negative axes, checked against this target's rank."""
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        rank = len(self.shape)
        out = []
        for d in dims:
            if not -rank <= d < rank:
                raise ValueError(f"dim {d} is out of range for {self.qualified} of shape {tuple(self.shape)}")
            out.append(d % rank)
        return tuple(sorted(set(out)))

    def state_shape(self, dim: int | Sequence[int] | None) -> tuple[int, ...]:
        """The shape of per-target random state (a mask, a noise draw).

        With `dim`, full size along those axes and 1 elsewhere; without it, the whole
        shape, except the batch axis of an activation, which is 1 so the state broadcasts
        over any batch size.
        """
        if not self.shape:
            return ()  # a scalar: one draw, whatever `dim`
        if dim is None:
            return (1, *self.shape[1:]) if self.batched else tuple(self.shape)
        dims = self.normalize_dims(dim)
        return tuple(s if i in dims else 1 for i, s in enumerate(self.shape))

    def generator(self, seed: int) -> torch.Generator:
        """A CPU generator for this target, seeded from `seed` and the target's name."""
        return torch.Generator().manual_seed((int(seed) * 1_000_003 + zlib.crc32(self.qualified.encode())) % 2**63)


def resolve_seed(seed: int | None) -> int:
    """`seed` itself, or one drawn from torch's global generator when it is None."""
    if seed is None:
        return int(torch.randint(0, 2**31, (1,)).item())
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"a seed is an int or None, got {seed!r}")
    return seed
