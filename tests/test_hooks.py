"""The hooks fallback for methods that cannot be traced at all."""

import numpy as np
import pytest
import torch
from torch import nn

import torchbend as tb
from conftest import seeded


class Untraceable(nn.Module):
    """Leaves the tensor world in its own method body, so no graph can be recorded."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(4, 2)

    def forward(self, x):
        h = self.a(x)
        h = torch.from_numpy(np.tanh(h.detach().numpy()))  # through numpy
        return self.b(h)


@pytest.fixture
def bended():
    model = seeded(Untraceable())
    b = tb.BendedModule(model)
    with pytest.warns(UserWarning, match="falling back to hooks"):
        b.trace("forward", torch.randn(2, 3))
    return b


def test_untraceable_method_falls_back_to_module_outputs(bended):
    report = bended.trace_report()
    assert report.rows[0][1] == "hooks" and "numpy" in report.rows[0][2]
    assert bended.activation_names() == ["a", "b"]
    assert bended.activation_shape("a") == (2, 4)


def test_hooked_activations_bend_and_reset(bended):
    model = bended.module
    x = torch.randn(5, 3)
    plain = model(x)
    assert torch.equal(bended(x), plain)
    with bended.bend(tb.Scale(0.0), "a"):
        expected = model.b(torch.zeros(5, 4))
        assert torch.allclose(bended(x), expected)
    assert torch.equal(bended(x), plain)
    assert not model._forward_hooks and not model.a._forward_hooks  # hooks only live during a call


def test_hooked_get_and_from_activations(bended):
    model = bended.module
    x = torch.randn(2, 3)
    acts = bended.get_activations("a", x=x)
    assert torch.equal(acts["a"], model.a(x))
    out = bended.from_activations("a", a=torch.zeros(2, 4), x=x)
    assert torch.allclose(out, model.b(torch.zeros(2, 4)))


def test_a_method_that_fails_when_run_reports_the_trace_error():
    model = seeded(Untraceable())
    with pytest.raises(tb.TraceError, match="mat1 and mat2"):
        tb.BendedModule(model).trace("forward", torch.randn(2, 5))
