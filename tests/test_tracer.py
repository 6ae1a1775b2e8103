import pytest
import torch
from torch import nn

import torchbend as tb
from conftest import ShapeLoop, seeded
from torchbend.tracing.record import trace_method


class Decisions(nn.Module):
    def forward(self, x):
        n = len(x)
        parts = [x[i] * i for i in range(n)]
        total = torch.stack(parts).sum(0)
        if total.abs().max() >= 0:
            total = total + 1
        width = int(x.shape[1])
        return total.view(width) * (n + width)


def test_python_decisions_are_recorded_with_their_source_line():
    record = trace_method(Decisions(), "forward", (torch.randn(3, 2),), {})
    assert [(d.kind, d.value) for d in record.decisions] == [("len", 3), ("bool", True), ("int", 2)]
    assert all("test_tracer.py" in d.where for d in record.decisions)
    assert "n = len(x)" in record.decisions[0].where
    assert "int(x.shape[1])" in record.decisions[2].where


def test_guards_raise_on_another_path_and_pass_on_the_same_one():
    model = Decisions()
    bended = tb.BendedModule(model)
    x = torch.randn(3, 2)
    bended.trace("forward", x)
    y = torch.randn(3, 2)
    assert torch.allclose(bended(y), model(y))
    with pytest.raises(tb.SpecializationError, match=r"len\(x\) == 3"):
        bended(torch.randn(4, 2))


def test_shapes_flow_symbolically_into_ops():
    model = seeded(ShapeLoop())
    record = trace_method(model, "forward", (torch.randn(2, 3, 5),), {})
    zeros = record.activations["zeros"]
    assert zeros.shape == (2, 3) and zeros.op == "call_function"
    assert record.activations["getitem"].type == "int"


def test_factories_stay_unpatched_after_tracing():
    zeros = torch.zeros
    trace_method(seeded(ShapeLoop()), "forward", (torch.randn(2, 3, 5),), {})
    assert torch.zeros is zeros


def test_tracing_failure_names_the_op_module_and_line():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Inner()

        def forward(self, x):
            return self.inner(x)

    class Inner(nn.Module):
        def forward(self, x):
            return x @ torch.ones(5, 5)  # wrong size

    with pytest.raises(tb.TraceError) as err:
        trace_method(Broken(), "forward", (torch.randn(2, 3),), {})
    message = str(err.value)
    assert "matmul" in message and "'inner'" in message and "test_tracer.py" in message
    # the op fails on these values as it would untraced: a leaf would not help, the inputs' shapes are named
    assert "leaves=" not in message and "(2, 3)" in message and "inputs" in message


def test_tracing_failure_not_of_the_values_suggests_a_leaf():
    class Inner(nn.Module):
        def forward(self, x):
            return x @ "not a tensor"

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Inner()

        def forward(self, x):
            return self.inner(x)

    with pytest.raises(tb.TraceError) as err:
        trace_method(Outer(), "forward", (torch.randn(2, 3),), {})
    assert "leaves=['inner']" in str(err.value)


def test_constants_do_not_touch_the_module():
    class WithConstant(nn.Module):
        def forward(self, x):
            return x + torch.ones(3).cumsum(0)

    model = WithConstant()
    record = trace_method(model, "forward", (torch.zeros(2, 3),), {})
    assert list(record.constants) == ["_tensor_constant0"]
    assert not hasattr(model, "_tensor_constant0")
    bended = tb.BendedModule(model)
    bended.trace("forward", torch.zeros(2, 3))
    assert torch.equal(bended(torch.zeros(1, 3)), torch.tensor([[1.0, 2.0, 3.0]]))


def test_keyword_only_and_varargs_methods():
    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def combine(self, *xs, weight=1.0, bias):
            return self.lin(sum(xs)) * weight + bias

    model = seeded(Mixed())
    bended = tb.BendedModule(model)
    a, b, c = torch.randn(3, 4, 2)
    bended.trace("combine", a, b, bias=c)
    assert torch.equal(bended.combine(a, b, bias=c), model.combine(a, b, bias=c))
    assert bended.activation_names("combine")[:3] == ["xs_0", "xs_1", "bias"]


def test_distribution_namedtuple_and_dataclass_outputs():
    import collections
    import dataclasses

    Pair = collections.namedtuple("Pair", "mean spread")

    @dataclasses.dataclass
    class Result:
        sample: torch.Tensor
        pair: tuple

    class Probabilistic(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 4)

        def forward(self, x):
            h = self.lin(x)
            mu, log_scale = h.chunk(2, dim=-1)
            dist = torch.distributions.Normal(mu, log_scale.exp())
            return Result(sample=dist.rsample(), pair=Pair(dist.mean, dist.stddev)), dist

    model = seeded(Probabilistic())
    bended = tb.BendedModule(model)
    x = torch.randn(5, 3)
    bended.trace("forward", x)
    assert "Normal" in bended.activation_names()
    torch.manual_seed(0)
    result, dist = bended(x)
    torch.manual_seed(0)
    plain, plain_dist = model(x)
    assert isinstance(result, Result) and isinstance(result.pair, Pair)
    assert isinstance(dist, torch.distributions.Normal)
    assert torch.equal(result.sample, plain.sample) and torch.equal(result.pair.spread, plain.pair.spread)
    bended.bend(tb.Scale(0.0), "exp")  # zero scale...
    with pytest.raises(ValueError):  # ...is refused by the distribution, as in the plain model
        bended(x)


def test_unknown_leaves_are_refused():
    with pytest.raises(tb.TraceError, match="nope"):
        trace_method(seeded(ShapeLoop()), "forward", (torch.randn(2, 3, 5),), {}, leaves=["nope"])


class Cache:
    """A plain Python object filled with tensors by the traced code (like a key/value cache)."""

    def __init__(self):
        self.items = []


def injects_default(fn):
    """A decorator that supplies an argument's default itself, as some libraries' wrappers do."""

    def wrapper(self, *args, **kwargs):
        kwargs.setdefault("flag", True)
        return fn(self, *args, **kwargs)

    wrapper.__wrapped__ = fn
    return wrapper


class Library(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    @injects_default
    def forward(self, x, flag=None):
        cache = Cache()
        h = self.lin(x)
        cache.items.append(h)
        floor = torch.finfo(h.dtype).min  # a dtype of a traced value is a constant
        return h.clamp(min=floor) * (2 if flag else 1), cache


def test_library_idioms_trace_at_op_level():
    model = seeded(Library())
    x = torch.randn(2, 4)
    record = trace_method(model, "forward", (x,), {})
    assert not record.fallbacks and "clamp" in record.activations
    assert record.activations["cache"].type == "Cache"
    bended = tb.BendedModule(model)
    bended.trace("forward", x)
    (out, cache), (plain, plain_cache) = bended(x), model(x)
    assert torch.equal(out, plain) and torch.equal(cache.items[0], plain_cache.items[0])
    assert bended(x)[1] is not cache  # the graph builds a new object at each call
    with bended.bend(tb.Scale(0.0), "lin"):
        assert torch.equal(bended(x)[1].items[0], torch.zeros(2, 4))  # the object holds the bent value


class _LazyState:
    """A cache object filled on first use, as Hugging Face's `LinearAttentionLayer`."""

    def __init__(self) -> None:
        self.scale = None


class _FillsThenNeedsATensor(nn.Module):
    def forward(self, x, state):
        if state.scale is None:
            state.scale = x.mean()  # written into the object while traced through
        if type(x) is not torch.Tensor:  # as a C function that accepts real tensors only
            raise TypeError("needs a tensor")
        return x * 2


class _Uses(nn.Module):
    def forward(self, x, state):
        return x + 1


class _PassesTheState(nn.Module):
    def __init__(self):
        super().__init__()
        self.fill = _FillsThenNeedsATensor()
        self.use = _Uses()  # a leaf given the object too, as a Mamba mixer is given its cache

    def forward(self, x):
        state = _LazyState()
        y = self.fill(x, state)
        return self.use(y, state)


def test_a_module_kept_whole_leaves_the_objects_it_was_given_as_they_were():
    model = _PassesTheState()
    x = torch.randn(2, 3)
    bended = tb.BendedModule(model)
    with pytest.warns(UserWarning, match="kept whole"):
        bended.trace("forward", x, leaves=["use"])
    assert torch.equal(bended(x), model(x))  # it raised KeyError: a rebuilt object read a node rolled back
