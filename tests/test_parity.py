"""Behaviours users bring from the reference torchbend."""

import pytest
import torch

import torchbend as tb
from conftest import ConvVAE, seeded
from torchbend.bending.target import Target

WEIGHT = Target("conv.weight", "weight", (6, 3, 3, 3))


def test_ordered_mask_keeps_exactly_floor_prob_n_and_is_nested():
    x = torch.ones(WEIGHT.shape)
    kept = []
    for prob in (0.1, 0.25, 0.5, 0.9):
        cb = tb.OrderedMask(prob, seed=3)
        out = cb(x, cb.setup(WEIGHT))
        assert int(out.sum()) == int(prob * x.numel())
        kept.append(out.bool())
    assert all((a & ~b).sum() == 0 for a, b in zip(kept, kept[1:]))  # each mask inside the next
    per_channel = tb.OrderedMask(0.5, dim=0, seed=3)
    out = per_channel(x, per_channel.setup(WEIGHT))
    assert out.sum(dim=(1, 2, 3)).tolist().count(27.0) == 3  # 3 of 6 output channels kept whole
    again = tb.OrderedMask(0.5, dim=0, seed=3)
    assert torch.equal(again(x, again.setup(WEIGHT)), out)
    with pytest.raises(ValueError, match=r"prob must be a number in \[0.0, 1.0\]"):
        tb.OrderedMask(1.5)


def test_ordered_mask_scripts_like_it_runs(vae, z):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    bended.bend(tb.OrderedMask(tb.BendingParameter("keep", 0.5), dim=1, seed=0), "decoder_net_convt0")
    scripted = bended.script()
    assert torch.allclose(scripted.decode(z), bended.decode(z), atol=1e-6)
    scripted.set_keep(0.25)
    bended.update("keep", 0.25)
    assert torch.allclose(scripted.decode(z), bended.decode(z), atol=1e-6)


def test_mask_with_dim_on_a_scalar_weight_draws_one_value():
    class WithScalar(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = torch.nn.Parameter(torch.tensor(2.0))

        def forward(self, x):
            return x * self.gain

    bended = tb.BendedModule(WithScalar())
    bended.bend(tb.Mask(0.5, dim=1, seed=0), "gain")
    out = bended(torch.ones(3))
    assert torch.equal(out, torch.full((3,), 2.0)) or torch.equal(out, torch.zeros(3))


def test_affine_takes_named_arguments_only():
    with pytest.raises(TypeError, match=r"by name, e.g. tb.Affine\(scale=2.0, bias=0.5\)"):
        tb.Affine(2.0, 0.5)
    x = torch.randn(4)
    assert torch.equal(tb.Affine(scale=2.0, bias=0.5)(x, None), x * 2.0 + 0.5)


def test_captures_accumulate_until_cleared(vae, z):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    cap = tb.Capture()
    bended.bend(cap, "decoder_net_convt1", fn="decode")
    with bended.capture():
        bended.decode(z[:3])
    with bended.capture():
        bended.decode(z[3:5])
    assert cap.captures["decode:decoder_net_convt1"].shape[0] == 5
    cap.clear()
    assert cap.captures == {}


def test_interpolation_from_capture_takes_weights_in_place_of_the_activation(vae, z):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    cap = tb.InterpolationFromCapture()
    bended.bend(cap, "decoder_net_convt1", fn="decode")
    with bended.capture():
        bended.decode(z[:2])
    logits = torch.tensor([[10.0, -10.0], [-10.0, 10.0]])  # softmax: almost one-hot
    out = bended.from_activations("decoder_net_convt1", fn="decode", decoder_net_convt1=logits)
    assert torch.allclose(out, vae.decode(z[:2]), atol=1e-4)
    same = bended.from_activations(
        "decoder_net_convt1", fn="decode", decoder_net_convt1=torch.zeros(1, 32, 7, 7), capture_weights=torch.eye(2)
    )
    assert torch.allclose(same, vae.decode(z[:2]), atol=1e-5)


def test_from_activations_takes_the_methods_non_tensor_arguments():
    class Shifted(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 3)

        def forward(self, x, y=1):
            return torch.relu(self.lin(x)) + y

    model = seeded(Shifted())
    x = torch.randn(2, 3)
    bended = tb.BendedModule(model)
    bended.trace("forward", x=x, y=2)
    acts = bended.get_activations("relu", x=x, y=2)
    assert torch.allclose(bended.from_activations("relu", x=x, y=2, **acts), model(x, 2))
    with pytest.raises(tb.SpecializationError, match="y=2"):
        bended.from_activations("relu", y=3, **acts)
    assert torch.allclose(bended.get_activations("lin", x, 2)["lin"], model.lin(x))  # positional, as the method


def test_seeded_conv_vae_fixture_is_deterministic():
    assert torch.equal(seeded(ConvVAE()).decoder["fc"].weight, seeded(ConvVAE()).decoder["fc"].weight)


def test_weights_given_in_place_of_the_activation_are_checked(vae, z):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    bended.bend(tb.InterpolationFromCapture(), "decoder_net_convt1", fn="decode")
    with pytest.raises(ValueError, match="nothing was captured there yet"):
        bended.from_activations("decoder_net_convt1", fn="decode", decoder_net_convt1=torch.zeros(2, 2))
    with bended.capture():
        bended.decode(z[:2])
    with pytest.raises(ValueError, match=r"must have shape \(N, 2\)"):
        bended.from_activations("decoder_net_convt1", fn="decode", decoder_net_convt1=torch.zeros(2, 5))
