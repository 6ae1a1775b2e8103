import pytest
import torch
from torch import nn

import torchbend as tb
from conftest import seeded


class Marked(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, x):
        h = tb.mark(torch.relu(self.lin(x)) * 2, "features")
        return h.sum(-1)


def test_mark_names_an_activation_and_is_a_no_op_outside_tracing():
    model = seeded(Marked())
    x = torch.randn(4, 3)
    assert torch.equal(model(x), (torch.relu(model.lin(x)) * 2).sum(-1))  # untraced: unchanged
    bended = tb.BendedModule(model)
    bended.trace("forward", x)
    assert "features" in bended.activation_names() and "mul" not in bended.activation_names()
    bended.bend(tb.Scale(0.0), "features")
    assert torch.equal(bended(x), torch.zeros(4))


def test_mark_names_must_be_identifiers():
    with pytest.raises(ValueError, match="identifier"):
        tb.mark(torch.ones(1), "not a name")
