import pytest
import torch

import torchbend as tb


def test_lambda_applies_its_function_to_a_copy():
    x = torch.ones(3)
    out = tb.Lambda(lambda t: t.mul_(5))(x, None)
    assert torch.equal(out, torch.full((3,), 5.0))
    assert torch.equal(x, torch.ones(3))


def test_lambda_errors_are_clear():
    with pytest.raises(TypeError, match="function"):
        tb.Lambda(3)
    with pytest.raises(TypeError, match="returned float"):
        tb.Lambda(lambda t: 1.0)(torch.ones(2), None)
