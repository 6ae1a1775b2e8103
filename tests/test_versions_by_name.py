"""Weight versions by name, as the reference torchbend's users write them: state_dict(name), the version
property, "_default", another instance of a wrapped object as a version."""

import pytest
import torch

import torchbend as tb
from conftest import ConvVAE, Tied, assert_unchanged, seeded, state_snapshot


def test_state_dict_by_version_name_and_the_version_property(vae, z):
    snapshot = state_snapshot(vae)
    bended = tb.BendedModule(vae)
    name = "decoder.net.convt1.weight"
    plain = vae.state_dict()
    assert bended.version is None
    bended.bend(tb.Mask(0.0), name)
    bended.write("bended")  # the reference's test: bake, then read both versions by name
    assert bended.version == "bended"
    assert torch.equal(bended.state_dict("bended")[name], torch.zeros_like(plain[name]))
    assert torch.equal(bended.state_dict("_default")[name], plain[name])
    assert torch.equal(bended.state_dict("original")[name], plain[name])
    assert list(bended.state_dict("bended")) == list(plain)  # every tensor of the state dict, buffers too
    assert torch.equal(bended.state_dict()[name], plain[name])  # plain state_dict(): the module's own, as before
    assert torch.equal(bended.state_dict(keep_vars=True)[name], vae.decoder["net"].convt1.weight)
    bended.version = None
    assert bended.version is None and torch.equal(bended.decode(z), vae.decode(z))
    bended.version = "bended"
    assert bended.version == "bended" and not torch.equal(bended.decode(z), vae.decode(z))
    bended.version = "_default"
    assert bended.version is None and torch.equal(bended.decode(z), vae.decode(z))
    bended.version = "bended"
    del bended.version
    assert bended.version is None
    with bended.set_version("bended"):
        assert bended.version == "bended"
    with bended.interpolate(0.25, bended=0.75):  # a number first: the module's own weight, as in the reference
        assert bended.version == {"original": 0.25, "bended": 0.75}
        assert torch.allclose(bended.bended_state_dict()[name], 0.25 * plain[name])
    with bended.interpolate(_default=0.5, bended=0.5):
        assert torch.allclose(bended.bended_state_dict()[name], 0.5 * plain[name])
    assert_unchanged(vae, snapshot)


def test_unknown_version_names_and_wrong_arguments_are_refused(vae):
    bended = tb.BendedModule(vae)
    with pytest.raises(tb.BendingError, match="no version named 'tuned'; versions: original"):
        bended.state_dict("tuned")
    with pytest.raises(tb.BendingError, match="no version named 'tuned'"):
        bended.version = "tuned"
    with pytest.raises(tb.BendingError, match="no version named 'tuned'"):
        bended.set_version("tuned")
    assert bended.version is None
    with pytest.raises(TypeError, match="for a mix use interpolate"):
        bended.set_version({"original": 1.0})
    with pytest.raises(tb.BendingError, match="other than 'original' and '_default'"):
        bended.create_version("_default", vae)
    with pytest.raises(TypeError, match="module's own weight twice"):
        bended.interpolate(0.5, original=0.5)
    with pytest.raises(tb.BendingError, match="name the same version"):
        bended.interpolate(original=0.5, _default=0.5)


def test_a_tied_weight_of_a_version_is_under_every_name():
    model = seeded(Tied())
    bended = tb.BendedModule(model)
    first = bended.weight_names[0]
    state = model.state_dict()
    tied = [k for k in state if k != first and state[k] is not None and state[k].data_ptr() == state[first].data_ptr()]
    assert tied  # the model ties a weight under two names
    bended.create_version("doubled", {first: 2 * state[first]}, strict=False)
    version = bended.state_dict("doubled")
    for key in [first, *tied]:
        assert torch.equal(version[key], 2 * state[first])


class Pair:
    def __init__(self, seed):
        self.vae = seeded(ConvVAE(), seed=seed)  # with the buffers of Pair(0): a version holds parameters only
        self.vae.load_state_dict(
            {k: v for k, v in seeded(ConvVAE()).state_dict().items() if "running" in k}, strict=False
        )

    def forward(self, z):
        return self.vae.decode(z)


def test_create_version_from_another_instance_of_the_wrapped_object(z):
    obj, other = Pair(0), Pair(5)
    bended = tb.BendedWrapper(obj)
    assert bended.create_version("other", other) == []
    assert torch.equal(
        bended.state_dict("other")["vae.decoder.net.convt1.weight"], other.vae.decoder["net"].convt1.weight
    )
    bended.version = "other"
    assert torch.equal(bended(z=z), other.forward(z))
    bended.version = None
    assert torch.equal(bended(z=z), obj.forward(z))
    with pytest.raises(TypeError, match="a state dict, a module or an object holding modules, got str"):
        bended.create_version("bad", "weights.pt")
