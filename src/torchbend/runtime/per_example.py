"""Per-example parameter values: one bent call in which each batch item has its own values.

    >>> gain = tb.BendingParameter("gain", 1.0)
    >>> bended.bend(tb.Scale(gain), "decoder_net_convt0")
    >>> values = torch.linspace(0, 2, 4).repeat_interleave(len(z))      # 4 gains x len(z) latents
    >>> out = bended.decode(z.repeat(4, 1), per_example={"gain": values})

Items with the same values form a group (the example: 4 groups of ``len(z)``), and every
group gets what a call with those values would give it:

- the method runs once, on the whole batch;
- an activation bend whose callback reads a per-example parameter runs once per group, on
  that group's rows (other bends run once, on all rows);
- a weight bend that reads one is computed once per group; each module owning such a weight
  runs its groups under ``torch.func.vmap`` over the stacked weights when the groups have one
  size, else group by group;
- where the call cannot be split this way (an untraced or hooks-recorded method, a weight
  read outside its module's call, a recurrent module's weights, a normalised or offloaded
  weight, a version-mix parameter), the method runs once per group and the outputs are joined.

Parameters are never set: other threads' calls are not affected. Tensor arguments whose
first dimension is the batch size are split along it; the others are given whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import torch

from ..bending.parameter import BendingParameter, frozen_values
from ..errors import BendingError


class Groups:
    """The batch items grouped by their per-example values (first-appearance order)."""

    def __init__(self, values: Mapping[BendingParameter, Sequence[Any]], base: Mapping[BendingParameter, Any]) -> None:
        self.params = frozenset(values)
        columns = list(values.values())
        self.size = len(columns[0])
        keys = list(zip(*columns))
        ids: dict[tuple, int] = {}
        index = [ids.setdefault(key, len(ids)) for key in keys]
        self.index = torch.tensor(index)
        self.members = [torch.nonzero(self.index == k).flatten() for k in range(len(ids))]
        self.values = [{**base, **dict(zip(values, key))} for key in ids]
        self.order = torch.cat(self.members)
        self.inverse = torch.argsort(self.order)
        self.equal = len({len(m) for m in self.members}) == 1

    def __len__(self) -> int:
        return len(self.members)

    def check(self, x: Any, what: str) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() == 0 or x.shape[0] != self.size:
            got = f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise BendingError(
                f"per_example gives {self.size} values per parameter, one per batch item, but {what} "
                f"has {got}; its first dimension must be the batch of {self.size}"
            )
        return x

    def each(self, fn: Callable[[torch.Tensor], Any], x: torch.Tensor, what: str) -> Any:
        """`fn` on each group's rows of `x`, with that group's values frozen; the results in batch order."""
        self.check(x, what)
        parts = []
        for rows, values in zip(self.members, self.values):
            with frozen_values(values):
                parts.append(fn(x.index_select(0, rows)))
        return join(parts, self, what)


class GroupedBend:
    """An activation bend as a per-example call runs it: each step that reads a per-example parameter runs once
    per group, on that group's rows; the other steps run once on the whole batch."""

    def __init__(self, bend: Any, groups: Groups) -> None:
        self.bend, self.groups = bend, groups
        self.grouped = [depends(cb, groups.params) for cb, _, _ in bend.steps]

    def __call__(self, x: torch.Tensor, **inputs: Any) -> torch.Tensor:
        for (cb, state, names), grouped in zip(self.bend.steps, self.grouped):
            kwargs = {name: self.bend.input_value(name, inputs) for name in names}
            if grouped:
                x = self.groups.each(
                    lambda rows, cb=cb, state=state, kw=kwargs: cb.forward(rows, state, **kw),  # type: ignore[misc]  # noqa: E501
                    x,
                    f"activation {self.bend.node}",
                )
            else:
                x = cb.forward(x, state, **kwargs)
        return x


def grouped_bends(bends: Any, groups: Groups) -> SimpleNamespace:
    """A program's activation bends (by node name: a namespace or a dict) as a per-example call of `groups` runs
    them."""
    items = bends.items() if isinstance(bends, Mapping) else vars(bends).items()
    return SimpleNamespace(**{name: GroupedBend(bend, groups) for name, bend in items})


def join(parts: Sequence[Any], groups: Groups, what: str) -> Any:
    """One output from the outputs of each group (in group order): tensors concatenated along the batch and put
    back in item order, containers joined item by item, anything else taken from the first group."""
    first = parts[0]
    if isinstance(first, torch.Tensor):
        if first.dim() == 0:
            raise BendingError(
                f"{what} gives a 0-d tensor per group, which cannot be split by batch item; "
                "per_example needs outputs with a batch dimension"
            )
        if [p.shape[0] for p in parts] != [len(m) for m in groups.members]:
            raise BendingError(
                f"{what} gives tensors of {[p.shape[0] for p in parts]} rows for groups of "
                f"{[len(m) for m in groups.members]} items: per_example needs outputs whose first "
                "dimension is the batch"
            )
        return torch.cat(list(parts)).index_select(0, groups.inverse)
    if isinstance(first, tuple) and hasattr(first, "_fields"):
        return type(first)(*(join(p, groups, what) for p in zip(*parts)))
    if isinstance(first, (tuple, list)):
        return type(first)(join(p, groups, what) for p in zip(*parts))
    if isinstance(first, dict):
        return type(first)((k, join([p[k] for p in parts], groups, what)) for k in first)
    if hasattr(first, "__dataclass_fields__"):
        return type(first)(**{k: join([getattr(p, k) for p in parts], groups, what) for k in vars(first)})
    return first


def split(value: Any, rows: torch.Tensor, size: int) -> Any:
    """The `rows` of every tensor in `value` whose first dimension is `size` (others whole)."""
    if isinstance(value, torch.Tensor):
        return value.index_select(0, rows) if value.dim() and value.shape[0] == size else value
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(split(v, rows, size) for v in value))
    if isinstance(value, (tuple, list)):
        return type(value)(split(v, rows, size) for v in value)
    if isinstance(value, dict):
        return {k: split(v, rows, size) for k, v in value.items()}
    return value


def check_inputs(args: tuple, kwargs: Mapping[str, Any], size: int) -> None:
    """Refuse a call none of whose tensor arguments has a first dimension of `size` (nothing to split)."""

    def sizes(value: Any) -> Iterator[int]:
        if isinstance(value, torch.Tensor):
            if value.dim():
                yield value.shape[0]
        elif isinstance(value, (tuple, list)):
            for v in value:
                yield from sizes(v)
        elif isinstance(value, Mapping):
            for v in value.values():
                yield from sizes(v)

    found = sorted(set(sizes((args, kwargs))))
    if size not in found:
        raise BendingError(
            f"per_example gives {size} values per parameter, one per batch item, but no tensor "
            f"argument has a batch of {size} (first dimensions: {found or 'none'})"
        )


def batch_size(inputs: Mapping[str, Any]) -> int | None:
    """The first dimension shared by every tensor of `inputs` that has one (None: none, or several)."""
    sizes = {v.shape[0] for v in inputs.values() if isinstance(v, torch.Tensor) and v.dim()}
    return sizes.pop() if len(sizes) == 1 else None


def repeat_batch(value: Any, size: int, times: int) -> Any:
    """`value` repeated `times` along its batch dimension when it has one of `size` (else as it is)."""
    if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == size:
        return value.repeat(times, *[1] * (value.dim() - 1))
    return value


def parse(per_example: Any, parameters: Mapping[str, BendingParameter]) -> dict[BendingParameter, list[Any]]:
    """Check the ``per_example`` keyword: known parameter names, one valid value per item, equal lengths."""
    from ..naming import unknown_name

    if not isinstance(per_example, Mapping) or not per_example:
        raise BendingError(
            "per_example takes a dict of parameter name -> one value per batch item, e.g. "
            "per_example={'gain': torch.linspace(0, 2, 16)}"
        )
    values: dict[BendingParameter, list[Any]] = {}
    for name, column in per_example.items():
        param = parameters.get(name)
        if param is None:
            raise unknown_name(name, list(parameters), "bending parameter")
        if isinstance(column, torch.Tensor):
            if column.dim() != 1:
                raise BendingError(
                    f"per_example[{name!r}] must be 1-d (one value per batch item), got shape {tuple(column.shape)}"
                )
            column = column.tolist()
        elif not isinstance(column, Sequence) or isinstance(column, str):
            raise BendingError(
                f"per_example[{name!r}] must be a sequence or 1-d tensor of values, got {type(column).__name__}"
            )
        checked = []
        for i, v in enumerate(column):
            try:
                checked.append(param._check(v))
            except (TypeError, ValueError) as error:
                raise BendingError(f"per_example[{name!r}][{i}]: {error}") from None
        values[param] = checked
    lengths = {p.name: len(v) for p, v in values.items()}
    if len(set(lengths.values())) != 1 or 0 in lengths.values():
        raise BendingError(f"per_example needs one value per batch item for every parameter, got lengths {lengths}")
    return values


def depends(callback: Any, params: frozenset[BendingParameter]) -> bool:
    """Whether `callback` reads any of `params`."""
    return any(p in params for p in callback.live_parameters())


def vmapped_call(groups: Groups, stacked: Mapping[tuple[str, str], torch.Tensor], path: str) -> Callable[..., Any]:
    """A call wrapper (see `ModuleView`) running a module once per group under ``torch.func.vmap``, with the
    tensors of `stacked` ((store, key) -> one tensor per group, stacked) in place of its own."""

    def wrapper(copy: torch.nn.Module, call: Callable[..., Any], x: Any, *args: Any, **kwargs: Any) -> Any:
        groups.check(x, f"the input of {path}")

        def one(tensors: dict[tuple[str, str], torch.Tensor], rows: torch.Tensor) -> Any:
            saved = {slot: copy.__dict__[slot[0]][slot[1]] for slot in tensors}
            try:
                for (store, key), tensor in tensors.items():
                    copy.__dict__[store][key] = tensor
                return call(rows, *args, **kwargs)
            finally:
                for (store, key), tensor in saved.items():
                    copy.__dict__[store][key] = tensor

        if groups.equal:
            grouped = x.index_select(0, groups.order).unflatten(0, (len(groups), -1))
            out = torch.func.vmap(one, randomness="different")(dict(stacked), grouped)
            return _ungroup(out, groups)
        parts = [
            one({slot: t[k] for slot, t in stacked.items()}, x.index_select(0, rows))
            for k, rows in enumerate(groups.members)
        ]
        return join(parts, groups, f"the output of {path}")

    return wrapper


def _ungroup(out: Any, groups: Groups) -> Any:
    if isinstance(out, torch.Tensor):
        return out.flatten(0, 1).index_select(0, groups.inverse)
    if isinstance(out, (tuple, list)):
        return type(out)(_ungroup(o, groups) for o in out)
    return out
