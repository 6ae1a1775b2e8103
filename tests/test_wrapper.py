import pytest
import torch

import torchbend as tb
from conftest import assert_unchanged, seeded, state_snapshot


class Bundle:
    """Not a module: an encoder, a decoder in a dict, a gain, and a method that uses them all."""

    def __init__(self):
        self.encoder = seeded(torch.nn.Linear(4, 3))
        self.parts = {"decoder": seeded(torch.nn.Linear(3, 4), seed=1)}
        self.gain = 2.0

    def roundtrip(self, x):
        return self.parts["decoder"](torch.tanh(self.encoder(x))) * self.gain


def test_objects_holding_modules_bend_like_modules():
    obj = Bundle()
    snapshot = state_snapshot(obj.encoder)
    x = torch.randn(5, 4)
    plain = obj.roundtrip(x)
    bended = tb.BendedModule(obj)
    assert isinstance(bended, tb.BendedWrapper) and bended.module is obj
    assert bended.weight_names == ["encoder.weight", "encoder.bias", "parts.decoder.weight", "parts.decoder.bias"]
    assert torch.equal(bended.roundtrip(x), plain)
    bended.trace("roundtrip", x)
    assert "tanh" in bended.activation_names("roundtrip")
    bended.bend(tb.Scale(0.0), "parts.decoder.weight")
    assert torch.allclose(bended.roundtrip(x), obj.parts["decoder"].bias.expand(5, 4) * 2.0)
    bended.reset()
    bended.bend(tb.Scale(-1.0), "tanh", fn="roundtrip")
    decoder = obj.parts["decoder"]
    expected = decoder(-torch.tanh(obj.encoder(x))) * 2.0
    assert torch.allclose(bended.roundtrip(x), expected, atol=1e-6)
    assert torch.allclose(bended.script().roundtrip(x), expected, atol=1e-6)
    bended.reset()
    assert torch.equal(bended.roundtrip(x), plain)
    assert_unchanged(obj.encoder, snapshot)
    with pytest.raises(TypeError, match="no module attribute"):
        tb.BendedWrapper(object())


def test_a_diffusers_pipeline_bent_in_its_unet():
    diffusers = pytest.importorskip("diffusers")
    unet = diffusers.UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(8, 16),
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
    )
    pipe = diffusers.DDPMPipeline(unet=seeded(unet), scheduler=diffusers.DDPMScheduler(num_train_timesteps=10))
    pipe.set_progress_bar_config(disable=True)
    snapshot = state_snapshot(unet)

    def run(fn):
        return fn(
            batch_size=1, generator=torch.Generator().manual_seed(0), num_inference_steps=3, output_type="np"
        ).images

    plain = run(pipe)
    bended = tb.BendedModule(pipe)
    assert "unet.conv_in.weight" in bended.weight_names
    bended.bend(tb.Scale(0.0), "unet.conv_out.weight")
    bent = run(bended)
    assert not (bent == plain).all()
    bended.reset()
    assert (run(bended) == plain).all()
    assert_unchanged(unet, snapshot)


class Base:
    def prepare(self, x):
        return x * self.gain


class Codec(Base):
    """Its methods use super(), isinstance and an attribute they set on themselves."""

    def __init__(self):
        self.encoder = seeded(torch.nn.Linear(4, 6))
        self.decoder = seeded(torch.nn.Linear(6, 4), seed=1)
        self.gain = 2.0
        self.calls = 0

    def __eq__(self, other):  # leaves the class unhashable, as a module must not be
        return isinstance(other, Codec) and self.gain == other.gain

    def prepare(self, x):
        assert isinstance(self, Codec)
        return super().prepare(x) + 1

    def run(self, x):
        self.calls = self.calls + 1
        return self.decoder(torch.relu(self.encoder(self.prepare(x))))


def test_methods_run_on_the_stand_in_as_on_the_object():
    obj = Codec()
    x = torch.randn(3, 4)
    plain = obj.run(x)
    obj.calls = 0
    bended = tb.BendedWrapper(obj)
    stand_in = bended.wrapped_module
    assert isinstance(stand_in, Codec) and isinstance(stand_in, torch.nn.Module)
    assert stand_in.encoder is obj.encoder and stand_in.gain == 2.0
    assert {stand_in: 1}[stand_in] == 1  # hashable by identity
    assert torch.equal(bended.run(x), plain)  # super() and isinstance inside the object's methods
    bended.bend(tb.Scale(2.0), "decoder.weight")
    expected = torch.nn.functional.linear(
        torch.relu(obj.encoder(x * 2.0 + 1)), obj.decoder.weight * 2, obj.decoder.bias
    )
    assert torch.allclose(bended.run(x), expected, atol=1e-6)
    bended.trace("run", x)
    assert torch.allclose(bended.run(x), expected, atol=1e-6)
    assert obj.calls == 0  # what a method sets lands on the stand-in, never on the object
    bended.reset()
    assert torch.equal(bended.run(x), plain)


class Sealed:
    """A class that refuses subclasses: its stand-in holds copies of its methods instead."""

    def __init_subclass__(cls, **kwargs):
        raise TypeError("Sealed cannot be subclassed")

    def __init__(self):
        self.net = seeded(torch.nn.Linear(2, 2))

    def run(self, x):
        return self.net(x)


def test_a_class_that_cannot_be_derived_still_bends():
    obj = Sealed()
    x = torch.randn(3, 2)
    bended = tb.BendedWrapper(obj)
    assert not isinstance(bended.wrapped_module, Sealed)
    bended.bend(tb.Scale(0.0), "net.weight")
    assert torch.allclose(bended.run(x), obj.net.bias.expand(3, 2))
    bended.reset()
    assert torch.equal(bended.run(x), obj.run(x))
