import pytest
import torch

import torchbend as tb
from conftest import ConvVAE, seeded

LAYERS = ["decoder_net_convt0", "decoder_net_bn0", "decoder_net_relu0", "decoder_net_convt1"]


@pytest.fixture
def bended(vae, z):
    b = tb.BendedModule(vae)
    b.trace("decode", z=z)
    return b


def test_get_activations_returns_pre_bend_values_with_other_bends_applied(bended, vae, z):
    net = vae.decoder["net"]
    h = vae.decoder["fc"](z).view(16, 8, 7, 7)
    acts = bended.get_activations("decoder_net_convt0", "decoder_net_bn0", z=z, fn="decode")
    assert list(acts) == ["decoder_net_convt0", "decoder_net_bn0"]
    assert torch.equal(acts["decoder_net_convt0"], net.convt0(h))
    bended.bend(tb.Scale(2.0), "decoder_net_convt0")
    bended.bend(tb.Scale(3.0), "decoder_net_bn0")
    acts = bended.get_activations("decoder_net_convt0", "decoder_net_bn0", z=z, fn="decode", _filter_bended=True)
    assert torch.equal(acts["decoder_net_convt0"], net.convt0(h))  # before its own bend
    assert torch.allclose(acts["decoder_net_bn0"], net.bn0(net.convt0(h) * 2))  # after the upstream one
    after = bended.get_activations("decoder_net_bn0", z=z, fn="decode", after_bends=True)
    assert torch.allclose(after["decoder_net_bn0"], net.bn0(net.convt0(h) * 2) * 3)


def test_get_activations_runs_each_module_once_and_stops_early(bended, vae, z):
    calls = {}
    handles = [
        m.register_forward_hook(lambda mod, i, o, name=name: calls.__setitem__(name, calls.get(name, 0) + 1))
        for name, m in vae.named_modules()
        if not list(m.children())
    ]
    try:
        bended.get_activations(r"decoder_net_(convt0|bn0|relu0)", "decoder_fc", z=z, fn="decode")
    finally:
        for h in handles:
            h.remove()
    assert calls == {"decoder.fc": 1, "decoder.net.convt0": 1, "decoder.net.bn0": 1, "decoder.net.relu0": 1}


def test_get_activations_errors(bended, z):
    with pytest.raises(tb.UnknownNameError, match="decoder_net_convt0"):
        bended.get_activations("decoder_net_cnvt0", z=z, fn="decode")
    with pytest.raises(TypeError, match="z"):
        bended.get_activations("decoder_net_convt0", fn="decode")
    with pytest.raises(tb.BendingError, match="at least one"):
        bended.get_activations(z=z, fn="decode")


@pytest.mark.parametrize("layer", LAYERS)
def test_layerwise_interpolation_ends_equal_each_input(layer):
    vae = seeded(ConvVAE(), seed=5)
    bended = tb.BendedModule(vae)
    z = torch.randn(2, 8, generator=torch.Generator().manual_seed(3)) * 3
    bended.trace("decode", z=z)
    bended.bend(tb.InterpolateActivation(), layer)
    acts = bended.get_activations(layer, z=z, fn="decode", _filter_bended=True)
    weights = torch.stack([torch.linspace(0.0, 1.0, 8), torch.linspace(1.0, 0.0, 8)], 1)
    out = bended.from_activations(layer, **acts, interp_weights=weights, fn="decode")
    plain = vae.decode(z)
    assert out.shape == (8, 1, 28, 28)
    assert torch.allclose(out[0], plain[1], atol=1e-5)
    assert torch.allclose(out[-1], plain[0], atol=1e-5)
    for middle in out[2:6]:
        assert (middle - plain[0]).abs().max() > 1e-3 and (middle - plain[1]).abs().max() > 1e-3
    # the same mix through an ordinary bent call
    assert torch.allclose(bended.decode(z, interp_weights=weights), out, atol=1e-6)


def test_from_activations_checks_values_and_inputs(bended, z):
    acts = bended.get_activations("decoder_net_convt1", z=z, fn="decode")
    with pytest.raises(tb.BendingError, match=r"decoder_net_convt1.*\('B', 1, 28, 28\)"):
        bended.from_activations("decoder_net_convt1", fn="decode")
    with pytest.raises(tb.BendingError, match=r"shape \(16, 1, 14, 14\), expected \('B', 1, 28, 28\)"):
        bended.from_activations("decoder_net_convt1", fn="decode", decoder_net_convt1=torch.zeros(16, 1, 14, 14))
    with pytest.raises(tb.BendingError, match="unexpected inputs.*interp_wieghts"):
        bended.from_activations(fn="decode", interp_wieghts=1, **acts)
    out = bended.from_activations(fn="decode", **acts)  # names taken from the keywords
    assert torch.equal(out, torch.sigmoid(acts["decoder_net_convt1"]))


def test_from_activations_at_another_batch_size_with_bends(bended, vae, z):
    bended.bend(tb.Scale(0.5), "decoder_net_relu0")
    acts = bended.get_activations("decoder_net_bn0", z=z[:3], fn="decode")
    out = bended.from_activations("decoder_net_bn0", fn="decode", **acts)
    assert out.shape == (3, 1, 28, 28)
    assert torch.allclose(out, bended.decode(z[:3]))


def test_partial_programs_are_compiled_once_until_bends_change(bended, z):
    engine = bended.engine
    bended.get_activations("decoder_net_convt0", z=z, fn="decode")
    programs = dict(engine.programs._programs)
    bended.get_activations("decoder_net_convt0", z=z, fn="decode")
    assert engine.programs._programs == programs
    bended.bend(tb.Scale(2.0), "decoder_net_convt0")
    bended.get_activations("decoder_net_convt0", z=z, fn="decode")
    assert all(p not in programs.values() for p in engine.programs._programs.values())


def test_from_activations_keeps_inputs_still_needed():
    class TwoInputs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(3, 3)
            self.b = torch.nn.Linear(3, 3)

        def forward(self, x, y):
            return self.b(self.a(x)) + y

    model = seeded(TwoInputs())
    bended = tb.BendedModule(model)
    x, y = torch.randn(2, 3), torch.randn(2, 3)
    bended.trace("forward", x, y)
    a = bended.get_activations("a", x=x, y=y)["a"]
    with pytest.raises(tb.BendingError, match=r"still needs the inputs \['y'\]"):
        bended.from_activations("a", a=a)
    assert torch.allclose(bended.from_activations("a", a=a, y=y), model(x, y))


def test_run_time_keywords_per_activation_and_as_a_list(vae, z):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z[:2])
    bended.bend(tb.InterpolateActivation(), "decoder_net_convt0", "decoder_net_convt1", fn="decode")
    mix = torch.tensor([[0.5, 0.5]])
    only_first = bended.decode(z[:2], decoder_net_convt0_interp_weights=mix)
    with torch.no_grad():
        net = vae.decoder["net"]
        h = net.convt0(vae.decoder["fc"](z[:2]).view(2, 8, 7, 7))
        expected = net.out(net.convt1(net.relu0(net.bn0(0.5 * h[:1] + 0.5 * h[1:]))))
    assert torch.allclose(only_first, expected, atol=1e-6)
    as_list = bended.decode(z[:2], interp_weights=[mix, None])
    assert torch.allclose(as_list, expected, atol=1e-6)
    swap = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    twice = bended.decode(z[:2], interp_weights=swap)  # shared: both activations swap the items back
    assert torch.allclose(twice, vae.decode(z[:2]), atol=1e-6)


def test_interpolating_a_methods_input_mixes_the_inputs(bended, vae, z):
    # a bend on the input itself: its run-time keyword is a placeholder that must come before the bend
    bended.bend(tb.InterpolateActivation(), "z", fn="decode")
    acts = bended.get_activations("z", z=z[:2], fn="decode")
    weights = torch.tensor([[0.25, 0.75]])
    mixed = bended.from_activations("z", **acts, interp_weights=weights, fn="decode")
    with torch.no_grad():
        expected = vae.decode(0.25 * z[:1] + 0.75 * z[1:2])
    torch.testing.assert_close(mixed, expected)
    torch.testing.assert_close(bended.decode(z[:2], interp_weights=weights), expected)
