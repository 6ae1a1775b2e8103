import torch

import torchbend as tb


def test_affine_family_on_numbers_and_parameters():
    x = torch.randn(3, 4)
    s = tb.BendingParameter("s", 2.0)
    assert torch.equal(tb.Scale(3)(x, None), x * 3)
    assert torch.equal(tb.Bias(-1)(x, None), x - 1)
    assert torch.equal(tb.Affine(scale=s, bias=0.5)(x, None), x * 2 + 0.5)
    s.value = -1.0
    assert torch.equal(tb.Affine(scale=s, bias=0.5)(x, None), -x + 0.5)
    assert torch.equal(tb.Scale(-s)(x, None), x)
