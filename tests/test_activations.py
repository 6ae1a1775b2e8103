import pytest
import torch

import torchbend as tb


def channel_tensor(scores, layout):
    """A tensor whose channel c has mean scores[b][c] for item b, in the given layout."""
    s = torch.tensor(scores, dtype=torch.float32)  # (B, C)
    if layout == "BCT":
        return s[:, :, None].expand(-1, -1, 5).clone()
    if layout == "BCHW":
        return s[:, :, None, None].expand(-1, -1, 3, 4).clone()
    return s[:, None, :].expand(-1, 6, -1).clone()  # BTC


@pytest.mark.parametrize("layout, dim", [("BCT", -2), ("BCHW", -3), ("BTC", -1), ("BCHW", 1)])
def test_threshold_keeps_the_most_active_channels_per_item(layout, dim):
    scores = [[0.1, 0.9, 0.5, 0.3], [0.8, 0.2, 0.4, 0.6], [4.0, 3.0, 2.0, 1.0]]
    kept = {True: [[0, 3], [1, 2], [2, 3]], False: [[1, 2], [0, 3], [0, 1]]}  # invert -> least active
    for invert in (False, True):
        x = channel_tensor(scores, layout)
        out = tb.ThresholdActivation(0.5, dim=dim, invert=invert)(x, None)
        axis = dim % x.ndim
        for b, channels in enumerate(kept[invert]):
            for c in range(4):
                values = out[b].select(axis - 1, c)
                original = x[b].select(axis - 1, c)
                assert torch.equal(values, original if c in channels else torch.zeros_like(values))


def test_threshold_amount_is_floor_of_threshold_times_channels_and_live():
    x = channel_tensor([[1.0, 2.0, 3.0, 4.0, 5.0]], "BCT")
    p = tb.BendingParameter("t", 0.5)
    cb = tb.ThresholdActivation(p, dim=1)
    assert (cb(x, None).abs().sum(-1) > 0).sum() == 2  # floor(2.5)
    p.value = 1.0
    assert torch.equal(cb(x, None), x)
    p.value = 0.0
    assert cb(x, None).abs().sum() == 0


def test_threshold_refuses_the_batch_axis():
    with pytest.raises(ValueError, match="batch axis"):
        tb.ThresholdActivation(0.5, dim=0)(torch.ones(2, 3), None)
    with pytest.raises(TypeError, match="int"):
        tb.ThresholdActivation(0.5, dim=None)


def test_interpolate_mixes_batch_items():
    x = torch.randn(2, 3, 4)
    cb = tb.InterpolateActivation()
    assert cb(x, None) is x
    w = torch.tensor([[1.0, 0.0], [0.25, 0.75], [0.0, 1.0]])
    out = cb(x, None, interp_weights=w)
    assert out.shape == (3, 3, 4)
    assert torch.allclose(out[1], 0.25 * x[0] + 0.75 * x[1])
    assert torch.equal(out[0], x[0])
    one = cb(x, None, interp_weights=torch.tensor([0.5, 0.5]))
    assert one.shape == (1, 3, 4) and torch.allclose(one[0], x.mean(0))
    soft = tb.InterpolateActivation(softmax=True)(x, None, interp_weights=torch.zeros(1, 2))
    assert torch.allclose(soft[0], x.mean(0))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        cb(x, None, interp_weights=torch.ones(3, 3))
