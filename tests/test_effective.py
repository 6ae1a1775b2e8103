import warnings

import pytest
import torch

import torchbend as tb
from conftest import assert_unchanged, state_snapshot


def normalised_net(kind):
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(2, 3, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conv = torch.nn.utils.weight_norm(conv) if kind == "hook" else torch.nn.utils.parametrizations.weight_norm(conv)
    return torch.nn.Sequential(conv, torch.nn.Tanh())


@pytest.mark.parametrize("kind", ["hook", "parametrization"])
def test_the_effective_weight_of_a_normalised_layer_bends_by_name(kind):
    model = normalised_net(kind)
    snapshot = state_snapshot(model)
    x = torch.randn(2, 2, 9)
    plain = model(x)
    conv = model[0]
    with torch.no_grad():
        weight = (
            conv.weight.clone() if kind == "parametrization" else torch._weight_norm(conv.weight_v, conv.weight_g, 0)
        )
    bended = tb.BendedModule(model)
    bended.trace("forward", x)
    bended.bend(tb.Scale(3.0), "0.weight")
    expected = torch.tanh(torch.nn.functional.conv1d(x, 3.0 * weight, conv.bias))
    assert torch.allclose(bended(x), expected, atol=1e-5)
    assert torch.allclose(model(x), plain)
    bended.reset()
    assert torch.equal(bended(x), plain)
    assert_unchanged(model, snapshot)


@pytest.mark.parametrize(
    "kind, name", [("hook", "0.weight_v"), ("parametrization", "0.parametrizations.weight.original1")]
)
def test_bending_what_a_norm_undoes_warns_with_the_effective_name(kind, name):
    bended = tb.BendedModule(normalised_net(kind))
    with pytest.warns(UserWarning, match="bend the effective weight by its name instead .*'0.weight'"):
        bended.bend(tb.Scale(3.0), name)
