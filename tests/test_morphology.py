import pytest
import torch

import torchbend as tb


def hot(size=5):
    x = torch.zeros(1, 1, size, size)
    x[0, 0, size // 2, size // 2] = 1
    return x


def test_dilate_hot_pixel_is_a_block():
    expected = torch.zeros(1, 1, 5, 5)
    expected[0, 0, 1:4, 1:4] = 1
    assert torch.equal(tb.Dilate(3)(hot(), None), expected)


def test_erode_removes_a_hot_pixel_and_shrinks_a_block():
    assert tb.Erode(3)(hot(), None).max() == 0
    block = torch.zeros(1, 1, 5, 5)
    block[0, 0, 1:4, 1:4] = 1
    assert torch.equal(tb.Erode(3)(block, None), hot())


def test_1d_dilate():
    x = torch.tensor([[[0.0, 0.0, 2.0, 0.0, 0.0]]])
    assert tb.Dilate(3)(x, None).tolist() == [[[0.0, 2.0, 2.0, 2.0, 0.0]]]


def test_blur_keeps_constants_and_spreads_a_peak():
    c = torch.full((1, 2, 6, 6), 3.0)
    torch.testing.assert_close(tb.Blur(1.5)(c, None), c)
    out = tb.Blur(1.0)(hot(9), None)[0, 0]
    assert out[4, 4] < 1 and out[4, 5] > 0 and torch.allclose(out, out.t())
    assert torch.equal(tb.Blur(0)(hot(), None), hot())


def test_sobel_of_a_step_edge():
    x = torch.zeros(1, 1, 4, 4)
    x[..., 2:] = 1
    out = tb.Sobel()(x, None)[0, 0]
    assert out[:, 0].tolist() == [0, 0, 0, 0]
    assert out[:, 1].tolist() == [4, 4, 4, 4]  # (1 + 2 + 1) across the step


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: tb.Dilate(2), "Dilate: k must be odd"),
        (lambda: tb.Erode(0), "Erode: k must be >= 1, got 0"),
        (lambda: tb.Dilate(2.5), "Dilate: k must be a whole number"),
        (lambda: tb.Blur(-1), "Blur: sigma must be >= 0, got -1"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises((TypeError, ValueError), match=message):
        make()


def test_1d_activations_of_an_audio_like_model_eager_and_scripted():
    nn = torch.nn
    model = nn.Sequential(nn.Conv1d(2, 4, 5, padding=2), nn.Tanh(), nn.Conv1d(4, 1, 3, padding=1))
    torch.manual_seed(0)
    bended = tb.BendedModule(model.eval())
    x = torch.randn(2, 2, 32)
    bended.trace("forward", input=x)
    shift = tb.BendingParameter("shift", 0.25)
    bended.bend(tb.Translate(shift, padding="wrap") >> tb.Erode(3) >> tb.Blur(1.0), "_0", fn="forward")
    plain = bended.get_activations("_0", fn="forward", input=x)["_0"]
    bent = bended.get_activations("_0", fn="forward", input=x, after_bends=True)["_0"]
    expected = tb.Blur(1.0)(tb.Erode(3)(torch.roll(plain, 8, -1), None), None)
    torch.testing.assert_close(bent, expected)
    torch.testing.assert_close(bended.script()(x), bended(x))


def flat_reflected(n):
    """The blur of n-pixel maps by a flat kernel over 2n - 1 taps with reflected edges, as a matrix."""
    weights = torch.zeros(n, n)
    for i in range(n):
        for t in range(-(n - 1), n):
            j = abs(i + t)
            weights[i, j if j < n else 2 * (n - 1) - j] += 1 / (2 * n - 1)
    return weights


def test_a_sigma_far_wider_than_the_map_costs_no_more_than_the_map():
    """The taps stop at the map's extent, read at call time: a live sigma of 1e15 on a 7 x 5 map is a flat
    kernel over it (reflected edges), not 6e15 taps."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 5, dtype=torch.float64)
    sigma = tb.BendingParameter("sigma", 1.0)
    blur = tb.Blur(sigma)
    sigma.value = 1e15
    expected = flat_reflected(7).double() @ x @ flat_reflected(5).double().t()
    torch.testing.assert_close(blur(x, None), expected)
    torch.testing.assert_close(tb.Blur(1e4)(x, None), expected, rtol=1e-6, atol=1e-6)
    audio = torch.randn(2, 3, 6, dtype=torch.float64)
    torch.testing.assert_close(tb.Blur(1e15)(audio, None), audio @ flat_reflected(6).double().t())
    assert tb.Blur(1e15)(torch.zeros(2, 0), None).shape == (2, 0)


def test_a_window_wider_than_the_map_is_cut_to_it(monkeypatch):
    import torch.nn.functional as F

    windows = []
    pool = F.max_pool2d
    monkeypatch.setattr(F, "max_pool2d", lambda x, k, *rest: windows.append(k) or pool(x, k, *rest))
    x = torch.randn(2, 3, 7, 5)
    out = tb.Dilate(10**15 + 1)(x, None)
    assert torch.equal(out, x.amax(dim=(-2, -1), keepdim=True).expand_as(x))
    assert windows == [[13, 9]]  # 2 * size - 1: every pixel sees the whole map
