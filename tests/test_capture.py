import pytest
import torch

import torchbend as tb
from conftest import Residual, seeded


def test_capture_records_over_several_calls_and_passes_through():
    model = seeded(Residual())
    bended = tb.BendedModule(model)
    bended.trace("forward", torch.randn(2, 4, 6))
    cap = tb.Capture()
    bended.bend(cap, "relu")
    xs = [torch.randn(2, 4, 6), torch.randn(3, 4, 6)]
    assert torch.equal(bended(xs[0]), model(xs[0]))  # not capturing: nothing recorded
    assert cap.captures == {}
    with bended.capture():
        outs = [bended(x) for x in xs]
    assert all(torch.equal(o, model(x)) for o, x in zip(outs, xs))
    expected = torch.cat([torch.relu(model.conv1(x)) for x in xs])
    assert list(cap.captures) == ["forward:relu"]
    assert torch.allclose(cap.captures["forward:relu"], expected)
    with bended.capture(cap):
        bended(xs[0])
    assert cap.captures["forward:relu"].shape[0] == 7  # captures accumulate
    cap.clear()
    with bended.capture(cap):
        bended(xs[0])
    assert cap.captures["forward:relu"].shape[0] == 2  # until cleared


def test_capture_context_needs_a_capture_bend():
    bended = tb.BendedModule(seeded(Residual()))
    with pytest.raises(tb.BendingError, match="Capture"):
        with bended.capture():
            pass


def test_interpolation_from_capture_mixes_captured_items():
    model = seeded(Residual())
    bended = tb.BendedModule(model)
    x = torch.randn(3, 4, 6)
    bended.trace("forward", x)
    cap = tb.InterpolationFromCapture()
    bended.bend(cap, "relu")
    with pytest.raises(ValueError, match="nothing was captured"):
        bended(x, capture_weights=torch.ones(1, 3))
    with bended.capture():
        bended(x)
    w = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    out = bended(x[:1], capture_weights=w)
    relu = torch.relu(model.conv1(x))
    mixed = torch.stack([relu[0], 0.5 * relu[1] + 0.5 * relu[2]])
    assert torch.allclose(out, x[:1] + model.conv2(mixed), atol=1e-6)
