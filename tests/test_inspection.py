import numpy as np
import pytest
import torch
from torch import nn

import torchbend as tb
from conftest import ShapeLoop, seeded


def test_trace_report_lists_decisions_leaves_and_fallbacks():
    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.loop = ShapeLoop()
            self.odd = Odd()

        def forward(self, x):
            return self.odd(self.loop(x))

    class Odd(nn.Module):
        def forward(self, x):
            return torch.as_tensor(np.tanh(x.detach().numpy()))  # a numpy function: kept whole

    model = seeded(Outer())
    bended = tb.BendedModule(model)
    with pytest.warns(UserWarning, match="'odd' could not be traced through"):
        bended.trace("forward", torch.randn(2, 3, 5), leaves=["loop.proj"])
    rows = bended.trace_report().rows
    kinds = [row[0] for row in rows]
    assert rows[0][:2] == ["mode", "traced"]
    assert "decision" in kinds
    assert ["leaf", "loop.proj", "kept whole on request"] in rows
    fallback = next(row for row in rows if row[0] == "fallback")
    assert fallback[1] == "odd" and "numpy" in fallback[2]
    assert any("range(steps)" in row[2] for row in rows if row[0] == "decision")
    assert "odd" in bended.activation_names() and "loop_proj" in bended.activation_names()
    x = torch.randn(3, 3, 5)
    assert torch.allclose(bended(x), model(x))
