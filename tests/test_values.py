import pytest
import torch

import torchbend as tb


def test_invert_about_each_maps_range_and_a_given_range():
    x = torch.tensor([[[1.0, 2.0, 5.0], [0.0, -1.0, 1.0]]])
    assert tb.Invert()(x, None).tolist() == [[[5.0, 4.0, 1.0], [0.0, 1.0, -1.0]]]
    assert tb.Invert(0, 1)(x, None).tolist() == [[[0.0, -1.0, -4.0], [1.0, 2.0, 0.0]]]


def test_threshold_ablate_clamp():
    x = torch.tensor([-1.0, 0.2, 0.7])
    assert tb.BinaryThreshold(0.5)(x, None).tolist() == [0, 0, 1]
    assert tb.Ablate()(x, None).tolist() == [0, 0, 0]
    assert torch.equal(tb.Clamp(0, 0.5)(x, None), torch.tensor([0, 0.2, 0.5]))


def test_quantize():
    x = torch.arange(5.0).reshape(1, 1, 5)
    # levels at 0, 2, 4; x / 2 = 0.5 and 1.5 round half to even, to 0 and 2
    assert tb.Quantize(3)(x, None).tolist() == [[[0.0, 0.0, 2.0, 4.0, 4.0]]]
    assert tb.Quantize(5)(x, None).tolist() == x.tolist()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: tb.Quantize(1), "Quantize: levels must be >= 2, got 1"),
        (lambda: tb.Clamp(1, 0), "Clamp: lo must be <= hi"),
        (lambda: tb.Invert(lo=0), "Invert: give both lo and hi"),
        (lambda: tb.BinaryThreshold(None), "BinaryThreshold: t must be a number"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises((TypeError, ValueError), match=message):
        make()
