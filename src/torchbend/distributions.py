"""Distributions that TorchScript compiles: `Normal`, `Bernoulli`, `Categorical` and `Uniform`.

    >>> from torchbend import distributions as D
    >>> posterior = D.Normal(torch.zeros(4, 8), torch.ones(4, 8))      # Normal(loc, scale), as torch's
    >>> z = posterior.rsample()                                         # (4, 8), differentiable
    >>> bool(torch.allclose(posterior.log_prob(z), posterior.to_torch().log_prob(z)))
    True
    >>> D.from_torch(torch.distributions.Bernoulli(logits=torch.zeros(3))).probs
    tensor([0.5000, 0.5000, 0.5000])

A module whose method returns one of them compiles with `torch.jit.script`, traces with
`tb.BendedModule(...).trace` (the distribution is one node of the graph, named after its class, after the
nodes that computed its parameters, which can be bent), and exports with ``bended.script()``, whose method
returns the same class. Each class takes its parameters as tensors, as torch's does (broadcast together,
checked as torch checks them, a ValueError otherwise); `log_prob`, `entropy`, `mean`, `mode`, `stddev` and
`variance` compute what torch's do, and `sample` draws what torch's draws from the same random state;
`log_prob` does not check its value (-inf outside the support, where torch's raises).
A TorchScript file whose method returns one of these classes gives them back to Python once this module is
imported (``import torchbend.distributions``).
"""

import math
import warnings
from typing import Any

import torch
import torch.fx
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "Bernoulli",
    "Categorical",
    "Normal",
    "Uniform",
    "DISTRIBUTIONS",
    "convert_from_torch",
    "convert_to_torch",
    "from_torch",
    "is_distribution",
]


def _new(cls: type, args: tuple, kwargs: dict) -> Any:
    """A new `cls`; made from values a torch.fx tracer records, one node of its graph instead (the distribution
    is then computed from the recorded values at each call)."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.fx.Proxy):
            return value.tracer.create_proxy("call_function", cls, args, kwargs, name=cls.__name__)
    return object.__new__(cls)


def _shape(sample_shape: list[int] | None, batch_shape: list[int]) -> list[int]:
    if sample_shape is None:
        return batch_shape
    return list(sample_shape) + batch_shape


def _eps(dtype: torch.dtype) -> float:
    """``torch.finfo(dtype).eps`` (which TorchScript lacks) for the floating dtypes."""
    if dtype == torch.float64:
        return 2.220446049250313e-16
    if dtype == torch.float16:
        return 0.0009765625
    if dtype == torch.bfloat16:
        return 0.0078125
    return 1.1920928955078125e-07


def _check(ok: Tensor, message: str) -> None:
    """A ValueError with `message` unless `ok` holds everywhere; not checked while torch.export or torch.compile
    records (the check would depend on the data)."""
    if not torch.compiler.is_compiling() and not bool(ok.all()):
        raise ValueError(message)


class Normal:
    """``Normal(loc, scale)``: a Gaussian with mean `loc` and standard deviation `scale` (> 0)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _new(cls, args, kwargs)

    def __init__(self, loc: Tensor, scale: Tensor) -> None:
        loc, scale = torch.broadcast_tensors(loc, scale)
        _check(loc == loc, "Normal: loc holds NaN")
        _check(scale > 0, "Normal: scale must be positive, and holds values <= 0 or NaN")
        self.loc = loc
        self.scale = scale

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def stddev(self) -> Tensor:
        return self.scale

    @property
    def variance(self) -> Tensor:
        return self.scale.pow(2)

    def sample(self, sample_shape: list[int] | None = None) -> Tensor:
        shape = _shape(sample_shape, list(self.loc.shape))
        with torch.no_grad():
            return torch.normal(self.loc.expand(shape), self.scale.expand(shape))

    def rsample(self, sample_shape: list[int] | None = None) -> Tensor:
        shape = _shape(sample_shape, list(self.loc.shape))
        eps = torch.empty(shape, dtype=self.loc.dtype, device=self.loc.device).normal_()
        return self.loc + eps * self.scale

    def log_prob(self, value: Tensor) -> Tensor:
        var = self.scale**2
        return -((value - self.loc) ** 2) / (2 * var) - self.scale.log() - math.log(math.sqrt(2 * math.pi))

    def entropy(self) -> Tensor:
        return 0.5 + 0.5 * math.log(2 * math.pi) + torch.log(self.scale)

    def as_tuple(self) -> tuple[Tensor, Tensor]:
        return self.loc, self.scale

    @torch.jit.unused
    def to_torch(self):
        """The same distribution as a `torch.distributions.Normal`."""
        return torch.distributions.Normal(self.loc, self.scale)

    @torch.jit.unused
    def __repr__(self) -> str:
        return f"Normal(loc: {tuple(self.loc.shape)}, scale: {tuple(self.scale.shape)})"


class Uniform:
    """``Uniform(low, high)``: uniform on ``[low, high)``, with ``low < high``."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _new(cls, args, kwargs)

    def __init__(self, low: Tensor, high: Tensor) -> None:
        low, high = torch.broadcast_tensors(low, high)
        _check(low < high, "Uniform: low must be below high everywhere")
        self.low = low
        self.high = high

    @property
    def mean(self) -> Tensor:
        return (self.high + self.low) / 2

    @property
    def mode(self) -> Tensor:
        return torch.full_like(self.high, math.nan)

    @property
    def stddev(self) -> Tensor:
        return (self.high - self.low) / 12**0.5

    @property
    def variance(self) -> Tensor:
        return (self.high - self.low).pow(2) / 12

    def rsample(self, sample_shape: list[int] | None = None) -> Tensor:
        shape = _shape(sample_shape, list(self.low.shape))
        rand = torch.rand(shape, dtype=self.low.dtype, device=self.low.device)
        return self.low + rand * (self.high - self.low)

    def sample(self, sample_shape: list[int] | None = None) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value: Tensor) -> Tensor:
        lb = self.low.le(value).type_as(self.low)
        ub = self.high.gt(value).type_as(self.low)
        return torch.log(lb.mul(ub)) - torch.log(self.high - self.low)

    def entropy(self) -> Tensor:
        return torch.log(self.high - self.low)

    def as_tuple(self) -> tuple[Tensor, Tensor]:
        return self.low, self.high

    @torch.jit.unused
    def to_torch(self):
        """The same distribution as a `torch.distributions.Uniform`."""
        return torch.distributions.Uniform(self.low, self.high)

    @torch.jit.unused
    def __repr__(self) -> str:
        return f"Uniform(low: {tuple(self.low.shape)}, high: {tuple(self.high.shape)})"


class Bernoulli:
    """``Bernoulli(probs=None, logits=None)``: 1 with probability `probs` (in [0, 1]), or ``sigmoid(logits)``;
    give exactly one of them."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _new(cls, args, kwargs)

    def __init__(self, probs: Tensor | None = None, logits: Tensor | None = None) -> None:
        if (probs is None) == (logits is None):
            raise ValueError("Bernoulli takes probs or logits: give exactly one of them")
        if probs is not None:
            _check((probs >= 0) & (probs <= 1), "Bernoulli: probs must lie in [0, 1]")
            p = probs
            clamped = probs.clamp(min=_eps(probs.dtype), max=1 - _eps(probs.dtype))
            lg = torch.log(clamped) - torch.log1p(-clamped)
        else:
            assert logits is not None
            _check(logits == logits, "Bernoulli: logits hold NaN")
            lg = logits
            p = torch.sigmoid(logits)
        self.probs = p
        self.logits = lg
        self.from_logits = logits is not None

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def mode(self) -> Tensor:
        mode = (self.probs >= 0.5).to(self.probs)
        return torch.where(self.probs == 0.5, torch.full_like(mode, math.nan), mode)

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape: list[int] | None = None) -> Tensor:
        shape = _shape(sample_shape, list(self.probs.shape))
        with torch.no_grad():
            return torch.bernoulli(self.probs.expand(shape))

    def log_prob(self, value: Tensor) -> Tensor:
        logits, value = torch.broadcast_tensors(self.logits, value)
        return -F.binary_cross_entropy_with_logits(logits, value, reduction="none")

    def entropy(self) -> Tensor:
        return F.binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")

    def as_tuple(self) -> tuple[Tensor]:
        return (self.probs,)

    @torch.jit.unused
    def to_torch(self):
        """The same distribution as a `torch.distributions.Bernoulli`, made from what this one was made from."""
        if self.from_logits:
            return torch.distributions.Bernoulli(logits=self.logits)
        return torch.distributions.Bernoulli(probs=self.probs)

    @torch.jit.unused
    def __repr__(self) -> str:
        return f"Bernoulli({'logits' if self.from_logits else 'probs'}: {tuple(self.probs.shape)})"


class Categorical:
    """``Categorical(probs=None, logits=None)``: one of ``probs.shape[-1]`` categories, with probabilities
    `probs` (normalised over the last axis) or ``softmax(logits)``; give exactly one of them."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _new(cls, args, kwargs)

    def __init__(self, probs: Tensor | None = None, logits: Tensor | None = None) -> None:
        if (probs is None) == (logits is None):
            raise ValueError("Categorical takes probs or logits: give exactly one of them")
        if probs is not None:
            if probs.dim() < 1:
                raise ValueError("Categorical: probs must have at least one dimension (the categories)")
            _check(probs >= 0, "Categorical: probs must not be negative")
            p = probs / probs.sum(-1, keepdim=True)
            lg = torch.log(p.clamp(min=_eps(p.dtype), max=1 - _eps(p.dtype)))
        else:
            assert logits is not None
            if logits.dim() < 1:
                raise ValueError("Categorical: logits must have at least one dimension (the categories)")
            _check(logits == logits, "Categorical: logits hold NaN")
            lg = logits - logits.logsumexp(dim=-1, keepdim=True)
            p = F.softmax(lg, dim=-1)
        self.probs = p
        self.logits = lg
        self.from_logits = logits is not None

    def _batch_shape(self) -> list[int]:
        return list(self.probs.shape[:-1])

    @property
    def mean(self) -> Tensor:
        return torch.full(self._batch_shape(), math.nan, dtype=self.probs.dtype, device=self.probs.device)

    @property
    def mode(self) -> Tensor:
        return self.probs.argmax(dim=-1)

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    @property
    def variance(self) -> Tensor:
        return torch.full(self._batch_shape(), math.nan, dtype=self.probs.dtype, device=self.probs.device)

    def sample(self, sample_shape: list[int] | None = None) -> Tensor:
        count = 1
        if sample_shape is not None:
            for n in sample_shape:
                count *= n
        probs_2d = self.probs.reshape(-1, self.probs.shape[-1])
        samples_2d = torch.multinomial(probs_2d, count, True).T
        return samples_2d.reshape(_shape(sample_shape, self._batch_shape()))

    def log_prob(self, value: Tensor) -> Tensor:
        value, log_pmf = torch.broadcast_tensors(value.long().unsqueeze(-1), self.logits)
        return log_pmf.gather(-1, value[..., :1]).squeeze(-1)

    def entropy(self) -> Tensor:
        logits = torch.nan_to_num(self.logits, nan=math.nan)  # -inf -> the lowest finite value, as torch's clamp
        return -(logits * self.probs).sum(-1)

    def as_tuple(self) -> tuple[Tensor]:
        return (self.probs,)

    @torch.jit.unused
    def to_torch(self):
        """The same distribution as a `torch.distributions.Categorical`, made from what this one was made from."""
        if self.from_logits:
            return torch.distributions.Categorical(logits=self.logits)
        return torch.distributions.Categorical(probs=self.probs)

    @torch.jit.unused
    def __repr__(self) -> str:
        return f"Categorical({'logits' if self.from_logits else 'probs'}: {tuple(self.probs.shape)})"


DISTRIBUTIONS = (Normal, Bernoulli, Categorical, Uniform)


def is_distribution(obj: Any) -> bool:
    """Whether `obj` is one of this module's distributions."""
    return isinstance(obj, DISTRIBUTIONS)


def from_torch(dist: Any) -> Any:
    """The distribution of this module equal to the `torch.distributions` object `dist` (one of this module's
    distributions is returned as it is): ``from_torch(torch.distributions.Normal(mu, sigma))``."""
    if isinstance(dist, torch.fx.Proxy):
        return dist.tracer.create_proxy("call_function", from_torch, (dist,), {}, name="from_torch")
    if is_distribution(dist):
        return dist
    d = torch.distributions
    if isinstance(dist, d.Normal):
        return Normal(dist.loc, dist.scale)
    if isinstance(dist, d.Uniform):
        return Uniform(dist.low, dist.high)
    if isinstance(dist, (d.Bernoulli, d.Categorical)):
        ours = Bernoulli if isinstance(dist, d.Bernoulli) else Categorical
        given = "logits" if dist._param is vars(dist).get("logits") else "probs"
        return ours(**{given: dist._param})
    raise TypeError(
        f"from_torch converts torch.distributions.Normal, Bernoulli, Categorical and Uniform, not {type(dist).__name__}"
    )


def convert_to_torch(dist: Any) -> Any:
    """`dist` as a `torch.distributions` object (``dist.to_torch()``; a torch distribution is returned as it
    is), the reference torchbend's name."""
    if isinstance(dist, torch.fx.Proxy):
        return dist.tracer.create_proxy("call_function", convert_to_torch, (dist,), {}, name="to_torch")
    if isinstance(dist, torch.distributions.Distribution):
        return dist
    if is_distribution(dist):
        return dist.to_torch()
    raise TypeError(f"convert_to_torch takes a distribution, not {type(dist).__name__}")


convert_from_torch = from_torch  # the reference torchbend's name

with warnings.catch_warnings():  # compiled now, so that a TorchScript file returning one gives it back to Python
    warnings.simplefilter("ignore", category=DeprecationWarning)
    for _cls in DISTRIBUTIONS:
        torch.jit.script(_cls)
del _cls
