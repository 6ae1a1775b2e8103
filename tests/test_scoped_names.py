"""Scoped activation patterns ``node@scope`` and ``node@scope#call`` on a traced sampling loop."""

import pytest
import torch

import torchbend as tb
from corpus import DiffusionSampler, _randn
from torchbend.naming import match_activations
from torchbend.tracing.record import ActivationInfo


def info(name: str, scope: str, call: int = 0) -> ActivationInfo:
    return ActivationInfo(name, "call_function", "f", None, None, "Tensor", None, scope, call)


INFOS = {
    i.name: i
    for i in [
        info("x", ""),
        info("conv", "unet.inp"),
        info("add", "unet", 0),
        info("conv_1", "unet.inp", 1),
        info("add_1", "unet", 1),
        info("mul", ""),
    ]
}


def test_scope_patterns_are_matched_whole():
    assert match_activations([".*@unet"], INFOS, "activation") == ["add", "add_1"]
    assert match_activations([".*@unet\\..*"], INFOS, "activation") == ["conv", "conv_1"]
    assert match_activations([".*@unet.*#1"], INFOS, "activation") == ["conv_1", "add_1"]
    assert match_activations(["add.*@unet#0", "mul"], INFOS, "activation") == ["add", "mul"]
    assert match_activations([".*@"], INFOS, "activation") == ["x", "mul"]  # the method's own code


def test_unknown_scope_lists_scoped_names():
    with pytest.raises(tb.UnknownNameError, match="add_1@unet#1"):
        match_activations(["add@unet#1"], INFOS, "activation")
    with pytest.raises(ValueError, match="invalid regular expression"):
        match_activations(["add@unet(#1"], INFOS, "activation")


def test_call_index_picks_one_sampling_step():
    torch.manual_seed(0)
    model = DiffusionSampler(steps=3)
    x = _randn(2, 1, 8, 8)
    bended = tb.BendedModule(model)
    bended.trace("forward", x)
    infos = bended.engine.records["forward"].activations
    convs = bended.resolve_activations(r"unet_inp.*@unet\.inp", fn="forward")
    assert [infos[n].call for n in convs] == [0, 1, 2]
    step1 = bended.resolve_activations(r"unet_inp.*@unet\.inp#1", fn="forward")
    assert step1 == [convs[1]]
    plain = model(x)
    with bended.bend(tb.Scale(0.0), step1[0]):
        bent = bended(x)
    assert not torch.allclose(bent, plain)
    with bended.bend(tb.Scale(0.0), convs[2]), bended.bend(tb.Scale(0.0), convs[1]):
        both = bended(x)
    assert not torch.allclose(both, bent)  # another step bent too: another result
    assert torch.equal(bended(x), plain)


def test_bend_takes_scoped_patterns():
    import torch

    import torchbend as tb

    class Twice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU())

        def forward(self, x):
            return self.block(self.block(x) + 1)

    torch.manual_seed(0)
    model = Twice()
    x = torch.randn(2, 3)
    bended = tb.BendedModule(model)
    bended.trace("forward", x)
    bend = bended.bend(tb.Scale(0.0), r".*@block\..*#1")  # inside the second call of `block`
    assert bend.targets and all(bended.engine.record("forward").activations[t.name].call == 1 for t in bend.targets)
    assert torch.equal(bended(x), torch.zeros(2, 3))
