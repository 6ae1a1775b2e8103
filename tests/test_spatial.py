import pytest
import torch

import torchbend as tb
from conftest import ConvVAE
from torchbend.bending.spatial import rotate_maps, translate_maps, zoom_maps

X = torch.arange(9.0).reshape(1, 1, 3, 3)


def test_rotate_90_is_rot90():
    torch.testing.assert_close(tb.Rotate(90)(X, None), torch.rot90(X, 1, (-2, -1)), atol=1e-5, rtol=0)
    torch.testing.assert_close(tb.Rotate(-90, padding="wrap")(X, None), torch.rot90(X, -1, (-2, -1)), atol=1e-5, rtol=0)


def test_translate_by_one_pixel_with_each_padding():
    zeros = tb.Translate(1 / 3)(X, None)[0, 0]
    assert zeros.tolist() == [[0, 0, 1], [0, 3, 4], [0, 6, 7]]
    wrapped = tb.Translate(1 / 3, padding="wrap")(X, None)
    torch.testing.assert_close(wrapped, torch.roll(X, 1, -1))
    down = tb.Translate(0, 1 / 3, padding="wrap")(X, None)
    torch.testing.assert_close(down, torch.roll(X, 1, -2))
    reflected = tb.Translate(-1 / 3, padding="reflection")(X, None)[0, 0]
    torch.testing.assert_close(reflected[:, 2], torch.tensor([2.0, 5.0, 8.0]))  # the edge column is mirrored in


def test_translate_and_zoom_1d():
    x = torch.arange(4.0).reshape(1, 1, 4)
    torch.testing.assert_close(tb.Translate(0.25, padding="wrap")(x, None), torch.roll(x, 1, -1))
    assert tb.Zoom(2)(x, None)[0, 0].tolist() == [0.75, 1.25, 1.75, 2.25]  # the middle half, magnified


def test_zoom_one_is_identity_and_two_magnifies_the_centre():
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(tb.Zoom(1)(x, None), x)
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1:3, 1:3] = 1
    # sampling points land at input pixel 0.75, 1.25, 1.75, 2.25 along each axis (bilinear)
    profile = torch.tensor([0.75, 1.0, 1.0, 0.75])
    torch.testing.assert_close(tb.Zoom(2)(x, None)[0, 0], profile[:, None] * profile[None, :])


def test_flip():
    x = torch.randn(2, 3, 4, 5)
    assert torch.equal(tb.Flip(-1)(x, None), x.flip(-1))
    assert torch.equal(tb.Flip(-2)(x, None), x.flip(-2))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: tb.Zoom(0), "Zoom: factor must be > 0, got 0"),
        (lambda: tb.Rotate(padding="edge"), "Rotate: padding must be one of 'zeros', 'reflection', 'wrap'"),
        (lambda: tb.Translate("a"), "Translate: x must be a number"),
        (lambda: tb.Zoom(tb.BendingParameter("f", -1.0)), "Zoom: factor must be > 0, got -1"),
        (lambda: tb.Flip(1.5), "Flip: axis must be an int"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises((TypeError, ValueError), match=message.replace("(", r"\(")):
        make()


def test_shape_checks_at_bend_time():
    bended = tb.BendedModule(ConvVAE().eval())
    bended.trace("decode", z=torch.randn(2, 8))
    with pytest.raises(tb.BendingError, match="Rotate needs 2-D maps"):
        bended.bend(tb.Rotate(10), "decoder.fc.weight")
    with pytest.raises(tb.BendingError, match="batch axis"):
        bended.bend(tb.Flip(0), "decoder_net_convt0", fn="decode")
    with pytest.raises(tb.BendingError, match="out of range"):
        bended.bend(tb.Flip(5), "decoder_net_convt0", fn="decode")
    assert not bended.bends


def test_live_parameter_and_input_untouched():
    angle = tb.BendingParameter("angle", 0.0)
    cb = tb.Rotate(angle)
    x = torch.randn(1, 2, 5, 5)
    before = x.clone()
    torch.testing.assert_close(cb(x, None), x)
    angle.value = 180
    torch.testing.assert_close(cb(x, None), x.flip(-1).flip(-2), atol=1e-5, rtol=0)
    assert torch.equal(x, before)


def test_helpers_script():
    x = torch.randn(2, 3, 6, 5)
    for padding in ("zeros", "reflection", "wrap"):
        torch.testing.assert_close(torch.jit.script(rotate_maps)(x, 30.0, padding), rotate_maps(x, 30.0, padding))
        torch.testing.assert_close(
            torch.jit.script(translate_maps)(x, 0.1, -0.2, padding), translate_maps(x, 0.1, -0.2, padding)
        )
        torch.testing.assert_close(torch.jit.script(zoom_maps)(x, 1.5, padding), zoom_maps(x, 1.5, padding))
