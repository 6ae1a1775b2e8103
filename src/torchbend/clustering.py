"""Groups of features that respond alike: k-means on the channels' spatial activation maps.

    >>> groups = tb.cluster_features(bended, "decoder_net_convt1", fn="decode", inputs={"z": z}, k=4)
    >>> list(groups)                     # ['cluster_0', 'cluster_1', 'cluster_2', 'cluster_3']
    >>> bended.bend(tb.Select(tb.Ablate(), groups["cluster_1"]), "decoder_net_convt1", fn="decode")
    >>> groups.plot(path="clusters.png")  # each cluster's mean activation map

Each channel is described by its maps over the batch of inputs, each map standardised so
that channels group by *where* they respond, not how strongly. Results are cached by the
model's fingerprint and weights, the method, the activation, the inputs, `k` and `seed`: in memory, and
in `cache_dir` when given. Needs scikit-learn: ``pip install torchbend[cluster]``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import fingerprint

_CACHE: dict[str, FeatureGroups] = {}


class FeatureGroup(list):
    """The channel indices of one group, with the group's `name` (usable as ``Select(..., channels=group)``)."""

    def __init__(self, name: str, channels: list[int]) -> None:
        super().__init__(channels)
        self.name = name

    def __repr__(self) -> str:
        return f"FeatureGroup({self.name!r}, {list(self)})"


class FeatureGroups(Mapping):
    """Named channel groups of one activation: ``groups["cluster_0"]`` is a `FeatureGroup`."""

    def __init__(self, activation: str, labels: list[int], mean_maps: torch.Tensor) -> None:
        self.activation = activation
        self.labels = list(labels)
        self.mean_maps = mean_maps  # (k, *spatial)
        self._groups = {
            f"cluster_{g}": FeatureGroup(f"cluster_{g}", [c for c, lab in enumerate(labels) if lab == g])
            for g in range(len(mean_maps))
        }

    def __getitem__(self, name: str) -> FeatureGroup:
        if name not in self._groups:
            raise KeyError(f"no feature group {name!r}; groups: {', '.join(self._groups)}")
        return self._groups[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._groups)

    def __len__(self) -> int:
        return len(self._groups)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{n}: {len(g)}" for n, g in self._groups.items())
        return f"FeatureGroups({self.activation!r}, {{{sizes}}})"

    def to_dict(self) -> dict:
        return {"activation": self.activation, "labels": self.labels, "mean_maps": self.mean_maps.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> FeatureGroups:
        return cls(data["activation"], data["labels"], torch.tensor(data["mean_maps"]))

    def plot(self, display: bool = False, path: str | Path | None = None) -> Any:
        """One picture per cluster: its mean activation map, titled with its name and size."""
        from .plot import _figure, _finish

        maps = self.mean_maps.float()
        if maps.ndim == 2:
            maps = maps.unsqueeze(1)
        k = len(maps)
        fig = _figure(1.6 * k, 1.9)
        for i, (name, group) in enumerate(self._groups.items()):
            ax = fig.add_subplot(1, k, i + 1)
            ax.imshow(maps[i].reshape(maps.shape[-2], -1).numpy(), cmap="magma", aspect="auto")
            ax.set_title(f"{name}\n{len(group)} channels", fontsize=8)
            ax.axis("off")
        return _finish(fig, display, path)


def _weights_hash(module: torch.nn.Module) -> str:
    h = hashlib.sha256(fingerprint(module).encode())
    for t in module.state_dict().values():
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            h.update(t.detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _inputs_hash(inputs: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for name in sorted(inputs):
        h.update(name.encode())
        value = inputs[name]
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            h.update(str((t.dtype, tuple(t.shape))).encode())
            h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
        else:
            h.update(repr(value).encode())
    return h.hexdigest()[:16]


def cluster_features(
    bended: Any,
    activation: str,
    fn: str = "forward",
    inputs: dict[str, Any] | None = None,
    k: int = 4,
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> FeatureGroups:
    """Cluster the channels (axis 1) of `activation` of method `fn` into `k` groups by their spatial maps."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"cluster_features: k must be an int >= 1, got {k!r}")
    inputs = dict(inputs or {})
    names = bended.resolve_activations(activation, fn=fn)
    if len(names) != 1:
        raise ValueError(f"cluster_features takes one activation; {activation!r} matches {names}")
    name = names[0]
    key = f"{_weights_hash(bended.module)}-{fn}-{name}-{_inputs_hash(inputs)}-k{k}-s{seed}"
    if key in _CACHE:
        return _CACHE[key]
    file = Path(cache_dir) / f"features-{hashlib.sha256(key.encode()).hexdigest()[:20]}.json" if cache_dir else None
    if file is not None and file.exists():
        groups = FeatureGroups.from_dict(json.loads(file.read_text()))
        _CACHE[key] = groups
        return groups
    try:
        from sklearn.cluster import KMeans
    except ImportError:
        raise ImportError("cluster_features needs scikit-learn: pip install torchbend[cluster]") from None
    with torch.no_grad():
        acts = bended.get_activations(name, fn=fn, **inputs)[name]
    if acts.ndim < 3:
        raise ValueError(
            f"cluster_features needs spatial maps (B, C, T) or (B, C, H, W); {name} has shape {tuple(acts.shape)}"
        )
    channels = acts.shape[1]
    if k > channels:
        raise ValueError(f"cluster_features: k={k} is more than the {channels} channels of {name}")
    maps = acts.detach().float().cpu().transpose(0, 1)  # (C, B, *spatial)
    flat = maps.reshape(channels, maps.shape[1], -1)
    centred = flat - flat.mean(dim=-1, keepdim=True)
    scaled = centred / centred.std(dim=-1, keepdim=True).clamp_min(1e-8)
    features = scaled.reshape(channels, -1).numpy().astype(np.float64)
    raw = KMeans(n_clusters=k, random_state=seed, n_init=4).fit_predict(features)
    order = {lab: i for i, lab in enumerate(dict.fromkeys(raw.tolist()))}  # groups numbered by first channel
    labels = [order[lab] for lab in raw.tolist()]
    mean_maps = torch.stack(
        [maps[[c for c in range(channels) if labels[c] == g]].mean(dim=(0, 1)) for g in range(len(order))]
    )
    groups = FeatureGroups(name, labels, mean_maps)
    _CACHE[key] = groups
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(groups.to_dict()))
    return groups
