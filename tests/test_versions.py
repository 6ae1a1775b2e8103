import copy

import pytest
import torch

import torchbend as tb
from conftest import ConvVAE, assert_unchanged, seeded, state_snapshot


@pytest.fixture
def tuned():
    model = seeded(ConvVAE(), seed=5)
    return {k: v for k, v in model.named_parameters()}


def test_versions_store_only_what_differs_and_switch_bit_exactly(vae, z, tuned):
    snapshot = state_snapshot(vae)
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    partial = {"decoder.net.convt1.weight": tuned["decoder.net.convt1.weight"]}
    with pytest.raises(tb.BendingError, match="lacks"):
        bended.create_version("tuned", partial)
    assert bended.create_version("tuned", partial, strict=False)  # names the parameters it lacks
    assert list(bended.engine.versions.stored["tuned"]) == ["decoder.net.convt1.weight"]
    tuned_model = copy.deepcopy(vae)
    tuned_model.load_state_dict(tuned, strict=False)
    bended.create_version("full", tuned_model)
    other = tuned_model.decode(z)
    with bended.set_version("full"):
        assert torch.equal(bended.decode(z), other)
    assert torch.equal(bended.decode(z), vae.decode(z))
    assert_unchanged(vae, snapshot)


def test_interpolation_with_live_weights_and_bends_on_top(vae, z, tuned):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    name = "decoder.net.convt1.weight"
    bended.create_version("tuned", {name: tuned[name]}, strict=False)
    t = tb.BendingParameter("t", 0.25, range=(0.0, 1.0))
    with bended.interpolate(original=1 - t, tuned=t):
        mixed = 0.75 * vae.decoder["net"].convt1.weight + 0.25 * tuned[name]
        assert torch.allclose(bended.bended_state_dict()[name], mixed)
        bended.update("t", 1.0)
        assert torch.allclose(bended.bended_state_dict()[name], tuned[name])
        with bended.bend(tb.Scale(2.0), name):
            assert torch.allclose(bended.bended_state_dict()[name], 2 * tuned[name])
    assert torch.equal(bended.bended_state_dict()[name], vae.decoder["net"].convt1.weight)


def test_write_bakes_weight_bends_into_a_version(vae, z):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    name = "decoder.fc.weight"
    bended.bend(tb.Scale(2.0), name)
    bended.bend(tb.Scale(0.5), "decoder_net_convt0", fn="decode")
    before = bended.decode(z)
    with pytest.raises(tb.BendingError, match="give a name"):
        bended.write()
    assert bended.write("doubled") == "doubled"
    assert [t.qualified for b in bended.bends for t in b.targets] == ["decode:decoder_net_convt0"]
    assert torch.equal(bended.decode(z), before)
    bended.bend(tb.Scale(3.0), name)  # composes with the version: 6x
    assert torch.allclose(bended.bended_state_dict()[name], 6 * vae.decoder["fc"].weight)
    with pytest.raises(tb.BendingError, match="no version named 'nope'"):
        bended.set_version("nope")


def test_exports_bake_the_version_in_use(vae, z, tuned):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    names = ["decoder.net.convt0.weight", "decoder.fc.weight"]
    bended.create_version("tuned", {n: tuned[n] for n in names}, strict=False)
    bended.set_version("tuned")
    bended.bend(tb.Scale(0.5), "decoder.fc.weight")
    assert torch.allclose(bended.script().decode(z), bended.decode(z), atol=1e-6)
