"""Objects with their own `forward` (the reference torchbend's wrapped objects), through every bending path."""

import numpy as np
import pytest
import torch
from torch import nn

import torchbend as tb
from conftest import assert_unchanged, seeded, state_snapshot


class Foo(nn.Module):
    __bended_methods__ = ["forward", "forward_dist"]

    def __init__(self, nlayers=2):
        super().__init__()
        self.pre_conv = nn.Conv1d(1, 4, 1)
        self.module_list = nn.ModuleList([m for _ in range(nlayers) for m in (nn.Conv1d(4, 4, 3), nn.Tanh())])

    def forward(self, x):
        out = self.pre_conv(x)
        for mod in self.module_list:
            out = mod(out)
        return out

    def forward_dist(self, x):
        out = self.forward(x)
        return torch.distributions.Normal(out, torch.ones_like(out))


class WrappedFoo:
    """Not a module: two modules, a helper, and `forward` / `forward_dist` of its own (as in the reference)."""

    __bended_methods__ = ["forward", "forward_dist"]

    def __init__(self, seed=0):
        self._foo1 = seeded(Foo(), seed)
        self._foo2 = seeded(Foo(), seed + 1)

    def preprocess(self, x):
        return (x - x.mean()) / x.std()

    def forward(self, x):
        x = self.preprocess(x)
        return self._foo1(x), self._foo2(x)

    def forward_dist(self, x):
        x = self.preprocess(x)
        return self._foo1.forward_dist(x), self._foo2.forward_dist(x)

    def state_dict(self):  # a method named like nn.Module's tree calls: torchbend keeps the module's
        return {"not": "tensors"}


def close(a, b):
    return all(torch.allclose(u, v, atol=1e-6) for u, v in zip(a, b, strict=True))


def tail(foo, h, start):
    """The rest of `foo` from its module_list[start] on."""
    for mod in foo.module_list[start:]:
        h = mod(h)
    return h


@pytest.fixture
def x():
    return torch.randn(2, 1, 16, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("wrap", [tb.BendedWrapper, tb.BendedModule])
def test_an_object_with_its_own_forward_is_called_and_traced(wrap, x):
    obj = WrappedFoo()
    plain = obj.forward(x)
    bended = wrap(obj)
    assert isinstance(bended, tb.BendedWrapper) and bended.module is obj
    assert close(bended(x=x), plain) and close(bended.forward(x=x), plain) and close(bended(x), plain)
    assert bended.engine.backend.methods() == ["forward", "forward_dist"]  # what __bended_methods__ lists
    bended.trace("forward", x=x)
    bended.trace("forward_dist", x=x)
    names = bended.activation_names()
    assert names[:5] == ["x", "mean", "sub", "std", "truediv"]  # preprocess, traced through
    assert {"_foo1_module_list_1", "_foo2_module_list_1"} <= set(names)
    assert "_foo1_module_list_1" in bended.activation_names("forward_dist")
    assert close(bended(x=x), plain)
    dists = bended.forward_dist(x=x)
    assert torch.allclose(dists[0].loc, plain[0], atol=1e-6) and isinstance(dists[1], torch.distributions.Normal)
    assert list(bended.state_dict()) == [f"_foo{i}.{k}" for i in (1, 2) for k in obj._foo1.state_dict()]
    assert bended.weight_names[:2] == ["_foo1.pre_conv.weight", "_foo1.pre_conv.bias"]


def test_weights_activations_and_run_time_keywords_bend_an_object_forward(x):
    obj = WrappedFoo()
    snapshots = [state_snapshot(obj._foo1), state_snapshot(obj._foo2)]
    plain = obj.forward(x)
    xn = obj.preprocess(x)
    bended = tb.BendedModule(obj)
    with bended.bend(tb.Scale(0.0), "_foo1.pre_conv.weight"):  # untraced: weight bends apply
        expected = tail(obj._foo1, obj._foo1.pre_conv.bias[None, :, None].expand(2, 4, 16), 0)
        out = bended(x=x)
        assert torch.allclose(out[0], expected, atol=1e-6) and torch.equal(out[1], plain[1])
    bended.trace("forward", x=x)
    with bended.bend(tb.Scale(-1.0), "_foo1_module_list_1"):
        h = obj._foo1.module_list[1](obj._foo1.module_list[0](obj._foo1.pre_conv(xn)))
        assert close(bended(x=x), (tail(obj._foo1, -h, 2), plain[1]))
        assert close(bended.forward(x=x), (tail(obj._foo1, -h, 2), plain[1]))
    with bended.bend(tb.InterpolateActivation(), "_foo1_module_list_1"):
        w = torch.tensor([[0.25, 0.75]])
        mixed = (w[0, :, None, None] * h).sum(0, keepdim=True)
        out = bended(x=x, interp_weights=w)
        assert out[0].shape == (1, 4, 12)
        assert torch.allclose(out[0], tail(obj._foo1, mixed, 2), atol=1e-6) and torch.equal(out[1], plain[1])
    assert close(bended(x=x), plain)
    for foo, snapshot in zip((obj._foo1, obj._foo2), snapshots):
        assert_unchanged(foo, snapshot)


def test_hooks_fallback_on_an_object_forward(x):
    class Untraceable(WrappedFoo):
        def forward(self, x):
            x = self.preprocess(x)
            h = torch.from_numpy(np.tanh(self._foo1(x).detach().numpy()))  # through numpy
            return h, self._foo2(x)

    obj = Untraceable()
    plain = obj.forward(x)
    bended = tb.BendedWrapper(obj)
    with pytest.warns(UserWarning, match="falling back to hooks"):
        bended.trace("forward", x=x)
    assert bended.trace_report().rows[0][1] == "hooks"
    assert "_foo2_module_list_1" in bended.activation_names()
    with bended.bend(tb.Scale(0.0), "_foo2_module_list_1"):
        out = bended(x=x)
        assert torch.allclose(out[0], plain[0])
        assert torch.allclose(out[1], tail(obj._foo2, torch.zeros(2, 4, 14), 2), atol=1e-6)
    assert close(bended(x=x), plain)


def test_configs_versions_interpolation_and_script_of_an_object_forward(x, tmp_path):
    obj, other = WrappedFoo(), WrappedFoo(seed=10)
    plain, other_out = obj.forward(x), other.forward(x)
    bended = tb.BendedWrapper(obj)
    bended.trace("forward", x=x)
    bended.bend(tb.Scale(2.0), "_foo2.pre_conv.weight")
    bended.bend(tb.Scale(0.5), "_foo1_module_list_3")
    bent = bended(x=x)
    assert not close(bent, plain)
    # configs: saved, loaded, bent on a new wrapper of the same object
    bended.bending_config().save(tmp_path / "bends.json")
    again = tb.BendedModule(obj)
    again.trace("forward", x=x)
    again.bend(tb.BendingConfig.load(tmp_path / "bends.json"))
    assert close(again(x=x), bent)
    # script export, bent
    scripted = bended.script()
    assert close(scripted.forward(x), bent)
    bended.reset()
    # versions: another instance of the object
    assert bended.create_version("other", other) == []
    with bended.set_version("other"):
        assert close(bended(x=x), other_out)
    assert close(bended(x=x), plain)
    with bended.interpolate(original=0.5, other=0.5):
        mean = WrappedFoo()
        for mine, theirs, target in ((obj._foo1, other._foo1, mean._foo1), (obj._foo2, other._foo2, mean._foo2)):
            target.load_state_dict({k: (v + theirs.state_dict()[k]) / 2 for k, v in mine.state_dict().items()})
        assert close(bended(x=x), mean.forward(x))
        assert close(bended.script().forward(x), mean.forward(x))


def test_bended_methods_of_a_module_subclass_are_listed_and_bent(x):
    class Listed(Foo):
        __bended_methods__ = ["forward", "_hidden"]

        def _hidden(self, x):
            return self.pre_conv(x) * 2

    model = seeded(Listed())
    bended = tb.BendedModule(model)
    assert bended.engine.backend.methods() == ["forward", "_hidden"]
    bended.bend(tb.Scale(0.0), "pre_conv.weight")
    expected = 2 * model.pre_conv.bias[None, :, None].expand(2, 4, 16)
    assert torch.allclose(bended._hidden(x), expected)  # a listed method runs bent, underscore or not
    bended.trace("_hidden", x)
    assert bended.activation_names("_hidden") == ["x", "pre_conv", "mul"]
    assert torch.allclose(bended._hidden(x), expected)


def test_a_bended_methods_list_naming_no_method_is_refused_at_wrap_time():
    class Wrong(WrappedFoo):
        __bended_methods__ = ["forward", "decode"]

    with pytest.raises(TypeError, match="'decode', which is not a method of Wrong"):
        tb.BendedWrapper(Wrong())
    with pytest.raises(TypeError, match="lists method names"):
        tb.BendedModule(type("One", (Foo,), {"__bended_methods__": "forward"})())
    with pytest.raises(TypeError, match="lists method names"):
        tb.BendedModule(type("Two", (Foo,), {"__bended_methods__": 2})())


class SealedFoo:
    """Refuses subclasses: its stand-in holds copies of its methods, its forward and list included."""

    __bended_methods__ = ["forward"]

    def __init_subclass__(cls, **kwargs):
        raise TypeError("SealedFoo cannot be subclassed")

    def __init__(self):
        self.net = seeded(nn.Linear(3, 3))

    def forward(self, x):
        return torch.tanh(self.net(x))


def test_an_object_that_cannot_be_derived_keeps_its_forward():
    obj = SealedFoo()
    x = torch.randn(2, 3)
    bended = tb.BendedWrapper(obj)
    assert not isinstance(bended.wrapped_module, SealedFoo)
    assert torch.equal(bended(x=x), obj.forward(x))
    assert bended.engine.backend.methods() == ["forward"]
    bended.trace("forward", x=x)
    with bended.bend(tb.Scale(0.0), "net"):
        assert torch.equal(bended(x=x), torch.zeros(2, 3))
    assert torch.equal(bended.forward(x=x), obj.forward(x))
