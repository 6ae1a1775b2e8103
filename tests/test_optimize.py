"""Learned bends: tb.Trainable values in callbacks, gradients through bent calls, tb.optimize."""

import threading

import pytest
import torch

import torchbend as tb
from conftest import ConvVAE, assert_unchanged, seeded, state_snapshot


def _bended(vae, z):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    return bended


def _mse(target):
    return lambda out: ((out - target) ** 2).mean()


def test_a_planted_weight_bend_is_recovered_and_the_model_gets_no_gradient(vae, z):
    planted = _bended(vae, z)
    planted.bend(tb.Scale(0.3), "decoder.net.convt0.weight")
    with torch.no_grad():
        target = planted.decode(z=z)
    snapshot = state_snapshot(vae)
    bended = _bended(vae, z)
    gain = tb.Trainable(1.0)
    bended.bend(tb.Scale(gain), "decoder.net.convt0.weight")
    run = tb.optimize(bended, "decode", {"z": z}, _mse(target), steps=150, lr=0.05, progress=False)
    assert float(gain) == pytest.approx(0.3, abs=0.01)
    assert run.history[-1] < run.history[0] / 100
    assert all(p.grad is None for p in vae.parameters())
    assert_unchanged(vae, snapshot)


def test_a_planted_per_channel_activation_bend_is_recovered(vae, z):
    true = torch.tensor([0.3, 1.5, -0.5, 2.0]).reshape(4, 1, 1)
    planted = _bended(vae, z)
    planted.bend(tb.Scale(tb.Trainable(true)), "decode:decoder_net_convt0")
    with torch.no_grad():
        target = planted.decode(z=z)
    bended = _bended(vae, z)
    gain = tb.Trainable(1.0, shape=(4, 1, 1))
    bended.bend(tb.Scale(gain), "decode:decoder_net_convt0")
    tb.optimize(bended, "decode", {"z": z}, _mse(target), steps=300, lr=0.05, progress=False)
    assert torch.allclose(gain.value, true, atol=0.02)
    assert all(p.grad is None for p in vae.parameters())


def test_gradients_reach_trainables_in_per_example_calls(vae, z):
    bended = _bended(vae, z)
    gain = tb.Trainable(1.0, shape=(4, 1, 1, 1))
    offset = tb.BendingParameter("offset", 0.0)
    bended.bend(tb.Scale(gain), "decoder.net.convt1.weight")
    bended.bend(tb.Bias(offset), "decode:decoder_net_convt0")
    out = bended.decode(z=z[:2], per_example={"offset": [0.0, 1.0]})
    (grad,) = torch.autograd.grad(out.sum(), [gain.parameter])
    assert grad.shape == (4, 1, 1, 1) and bool(grad.abs().sum() > 0)
    with torch.no_grad():
        assert torch.allclose(out, bended.decode(z=z[:2], per_example={"offset": [0.0, 1.0]}))


def test_a_trainable_is_checked_when_bent_and_refused_where_not_differentiable(vae, z):
    bended = _bended(vae, z)
    with pytest.raises(tb.BendingError, match=r"shape \(5,\).*\(C, 1, 1\)"):
        bended.bend(tb.Scale(tb.Trainable(1.0, shape=(5,))), "decode:decoder_net_convt0")
    with pytest.raises(tb.BendingError, match="does not fit"):
        bended.bend(tb.Bias(tb.Trainable(0.0, shape=(3, 1, 1, 1))), "decoder.net.convt0.weight")
    assert bended.bends == []
    with pytest.raises(TypeError, match="prob cannot be learned"):
        tb.Mask(tb.Trainable(0.5))
    with pytest.raises(ValueError, match="does not broadcast"):
        tb.Trainable(torch.ones(3), shape=(4,))
    with pytest.raises(ValueError, match="NaN"):
        tb.Trainable(float("nan"))


def test_strength_scales_the_learned_offset_live(vae, z):
    bended = _bended(vae, z)
    strength = tb.BendingParameter("strength", 1.0)
    steer = tb.Trainable(torch.zeros(4, 1, 1), strength=strength)
    bended.bend(tb.Bias(steer), "decode:decoder_net_convt0")
    bended.bend(tb.Scale(tb.Trainable(1.0, strength=strength)), "decoder.net.convt1.weight")
    with torch.no_grad():
        plain = vae.decode(z)
    tb.optimize(bended, "decode", {"z": z}, lambda out: -out.mean(), steps=20, lr=0.1, progress=False)
    with torch.no_grad():
        learned = bended.decode(z=z)
        strength.value = 0.0
        assert torch.allclose(bended.decode(z=z), plain, atol=1e-6)
        strength.value = 2.0
        doubled = bended.decode(z=z)
    assert learned.mean() > plain.mean() and doubled.mean() > learned.mean()
    assert "strength" in bended.controllables


def test_any_torch_optimizer_and_regularisers(vae, z):
    bended = _bended(vae, z)
    gain = tb.Trainable(1.0, shape=(4, 1, 1))
    bended.bend(tb.Scale(gain), "decode:decoder_net_convt0")
    run = tb.optimize(
        bended,
        "decode",
        {"z": z},
        lambda out: out.mean() * 0,
        steps=30,
        lr=0.05,
        optimizer=torch.optim.SGD,
        regularizers=[tb.l1(1.0)],
        progress=False,
    )
    assert run.history[-1] < run.history[0] and float(gain.value.abs().max()) < 0.6
    steer = tb.Trainable(0.0, shape=(4, 1, 1))
    bended.bend(tb.Bias(steer), "decode:decoder_net_convt0")
    tb.optimize(
        bended,
        "decode",
        {"z": z},
        lambda out: -out.mean(),
        steps=60,
        lr=0.2,
        params=[steer],
        optimizer=lambda ps: torch.optim.Adam(ps, lr=0.2),
        regularizers=[tb.norm_bound(1.0, 10.0)],
        progress=False,
    )
    assert 0.8 < float(steer.value.norm()) < 1.3


def test_errors_name_the_fix(vae, z):
    bended = _bended(vae, z)
    with pytest.raises(tb.BendingError, match="no bend of this module reads a tb.Trainable"):
        tb.optimize(bended, "decode", {"z": z}, lambda out: out.mean())
    gain = tb.Trainable(1.0)
    bended.bend(tb.Scale(gain), "decode:decoder_net_convt0")
    with pytest.raises(tb.BendingError, match="one-element tensor"):
        tb.optimize(bended, "decode", {"z": z}, lambda out: out, progress=False)
    with pytest.raises(tb.BendingError, match="read by no bend"):
        tb.optimize(bended, "decode", {"z": z}, lambda out: out.mean(), params=[tb.Trainable(1.0)])
    encoder = tb.Trainable(1.0)
    bended.trace("encode", x=torch.rand(2, 1, 28, 28))
    bended.bend(tb.Scale(encoder), "encode:encoder_0")
    with pytest.raises(tb.BendingError, match="does not affect the loss"):
        tb.optimize(bended, "decode", {"z": z}, lambda out: out.mean(), params=[gain, encoder], progress=False)
    assert float(gain) == 1.0


def test_ctrl_c_keeps_the_best_values(vae, z):
    bended = _bended(vae, z)
    gain = tb.Trainable(1.0)
    bended.bend(tb.Scale(gain), "decode:decoder_net_convt0")
    seen = []

    def loss(out):
        if len(seen) == 5:
            raise KeyboardInterrupt
        seen.append(float(gain))
        return (out.mean() - 0.9) ** 2 if len(seen) < 4 else out.mean() * 0 + 10.0  # worse after step 3

    run = tb.optimize(bended, "decode", {"z": z}, loss, steps=100, lr=0.05, progress=False)
    assert run.interrupted and len(run.history) == 5 and run.best_step == 2
    assert float(gain) == pytest.approx(seen[2])


def test_a_threaded_run_with_a_concurrent_caller(vae, z):
    planted = _bended(vae, z)
    planted.bend(tb.Scale(0.5), "decoder.net.convt1.weight")
    with torch.no_grad():
        target = planted.decode(z=z)
    bended = _bended(vae, z)
    gain = tb.Trainable(1.0)
    bended.bend(tb.Scale(gain), "decoder.net.convt1.weight")
    bended.bend(tb.Bias(tb.Trainable(0.0)), "decode:decoder_net_convt0")
    run = tb.optimize(bended, "decode", {"z": z}, _mse(target), steps=100000, lr=0.02, thread=True, progress=False)
    outputs = []
    with torch.no_grad():
        while len(run.history) < 20 and run.running:
            outputs.append(bended.decode(z=z[:2]))
    run.stop()
    run.join()
    assert run.interrupted and 20 <= len(run.history) < 100000 and not run.running
    assert all(bool(torch.isfinite(o).all()) for o in outputs)
    assert run.history[-1] < run.history[0]
    with torch.no_grad():  # the values kept are the best ones, and calls see them
        expected = _bended(vae, z)
        expected.bend(tb.Scale(float(gain)), "decoder.net.convt1.weight")
        bias = next(t for b in bended.bends for t in b.callback.trainables() if t is not gain)
        expected.bend(tb.Bias(float(bias)), "decode:decoder_net_convt0")
        assert torch.allclose(bended.decode(z=z), expected.decode(z=z), atol=1e-6)
    assert all(p.grad is None for p in vae.parameters())


def test_reads_from_other_threads_see_whole_values():
    t = tb.Trainable(0.0, shape=(1000,))
    stop = threading.Event()
    bad = []

    def read():
        while not stop.is_set():
            with torch.no_grad():
                v = t.read()
            if not bool((v == v[0]).all()):
                bad.append(v)

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(200):
        t.value = torch.full((1000,), float(i))
    stop.set()
    reader.join()
    assert bad == []


def test_a_vae_on_another_seed_also_learns():
    vae = seeded(ConvVAE(), seed=3)
    z = torch.randn(8, 8, generator=torch.Generator().manual_seed(2))
    bended = _bended(vae, z)
    bended.bend(
        tb.Affine(scale=tb.Trainable(1.0, shape=(4, 1, 1)), bias=tb.Trainable(0.0, shape=(4, 1, 1))),
        "decode:decoder_net_convt0",
    )
    run = tb.optimize(
        bended, "decode", lambda step: {"z": z}, lambda out: -out.mean(), steps=10, lr=0.1, progress=False
    )
    assert run.history[-1] < run.history[0]


def _learned(vae, z):
    bended = _bended(vae, z)
    strength = tb.BendingParameter("strength", 1.0, range=(0.0, 4.0))
    gain = tb.Trainable(1.0, shape=(8, 1, 1, 1), strength=strength)
    bended.bend(tb.Scale(gain), "decoder.net.convt0.weight")
    bended.bend(tb.Bias(tb.Trainable(0.0, shape=(4, 1, 1), name="steer")), "decode:decoder_net_convt0")
    tb.optimize(bended, "decode", {"z": z}, lambda out: -out.mean(), steps=5, lr=0.1, progress=False)
    return bended, strength


def test_learned_configs_round_trip_beside_a_safetensors_file(vae, z, tmp_path):
    bended, strength = _learned(vae, z)
    strength.value = 0.5
    with torch.no_grad():
        expected = bended.decode(z=z)
    bended.bending_config().save(tmp_path / "learned.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["learned.json", "learned.safetensors"]
    loaded = tb.BendingConfig.load(tmp_path / "learned.json")
    other = _bended(vae, z)
    other.bend(loaded)
    with torch.no_grad():
        assert torch.equal(other.decode(z=z), expected)
        other.update("strength", 0.0)
        assert torch.allclose(other.decode(z=z), _plain_bias(vae, z, other), atol=1e-6)
    assert sorted(loaded.trainables()) == ["steer", "trainable0"]
    tb.optimize(other, "decode", {"z": z}, lambda out: -out.mean(), steps=2, progress=False)  # training goes on


def _plain_bias(vae, z, other):
    """`vae.decode(z)` with only the learned bias (the scale's strength is 0)."""
    steer = next(t for b in other.bends for t in b.callback.trainables() if t.name == "steer")
    check = _bended(vae, z)
    check.bend(tb.Bias(tb.Trainable(steer.value)), "decode:decoder_net_convt0")
    return check.decode(z=z)


def test_a_learned_config_is_checked_on_load(vae, z, tmp_path):
    bended, _ = _learned(vae, z)
    path = tmp_path / "learned.json"
    bended.bending_config().save(path)
    sidecar = tmp_path / "learned.safetensors"
    data = sidecar.read_bytes()
    sidecar.write_bytes(data[:-4] + b"\0\0\0\0")
    with pytest.raises(tb.ConfigError, match="not the one saved with it"):
        tb.BendingConfig.load(path)
    sidecar.unlink()
    with pytest.raises(tb.ConfigError, match=r"learned.safetensors beside it"):
        tb.BendingConfig.load(path)
    import json

    import safetensors.torch

    config = json.loads(path.read_text())
    bad = safetensors.torch.save(
        {
            "steer": torch.full((4, 1, 1), float("nan")),
            "steer.origin": torch.zeros(4, 1, 1),
            "trainable0": torch.ones(8, 1, 1, 1),
            "trainable0.origin": torch.ones(8, 1, 1, 1),
        }
    )
    import hashlib

    config["trainables"]["sha256"] = hashlib.sha256(bad).hexdigest()
    with pytest.raises(tb.ConfigError, match="'steer', finite float32"):
        tb.BendingConfig.from_dict(config, bad)
    with pytest.raises(tb.ConfigError, match="beside the JSON"):
        tb.BendingConfig.from_dict(config)


def test_learned_bends_export_with_their_values_and_a_live_strength(vae, z, tmp_path):
    bended, strength = _learned(vae, z)
    scripted = bended.script(["decode"])
    bended.export(tmp_path / "learned.pt2", "decode", z)
    program = torch.export.load(str(tmp_path / "learned.pt2")).module()
    with torch.no_grad():
        assert torch.allclose(scripted.decode(z), bended.decode(z=z), atol=1e-5)
        scripted.set_strength(2.0)
        strength.value = 2.0
        assert torch.allclose(scripted.decode(z), bended.decode(z=z), atol=1e-5)
        assert torch.allclose(program(z, strength=torch.tensor(2.0)), bended.decode(z=z), atol=1e-5)


def test_a_low_rank_map_of_the_channels_is_learned_saved_and_exported(vae, z, tmp_path):
    torch.manual_seed(0)
    true_u, true_v = torch.randn(4, 1), torch.randn(4, 1)
    planted = _bended(vae, z)
    planted.bend(tb.LowRank(tb.Trainable(true_u), tb.Trainable(true_v), dim=1), "decode:decoder_net_convt0")
    with torch.no_grad():
        target = planted.decode(z=z)
    bended = _bended(vae, z)
    u, v = tb.Trainable(torch.randn(4, 1) / 2), tb.Trainable(0.0, shape=(4, 1))
    with pytest.raises(tb.BendingError, match="give the axis of the features"):
        bended.bend(tb.LowRank(u, v), "decode:decoder_net_convt0")
    bended.bend(tb.LowRank(u, v, dim=1), "decode:decoder_net_convt0")
    run = tb.optimize(bended, "decode", {"z": z}, _mse(target), steps=200, lr=0.05, progress=False)
    assert run.best_loss < run.history[0] / 20
    assert torch.allclose(u.value @ v.value.t(), true_u @ true_v.t(), atol=0.1)
    bended.bending_config().save(tmp_path / "rank.json")
    other = _bended(vae, z)
    other.bend(tb.BendingConfig.load(tmp_path / "rank.json"))
    with torch.no_grad():
        assert torch.equal(other.decode(z=z), bended.decode(z=z))
        assert torch.allclose(bended.script(["decode"]).decode(z), bended.decode(z=z), atol=1e-5)
    with pytest.raises(TypeError, match="tb.Trainable of shape"):
        tb.LowRank(torch.zeros(4, 1), v)
