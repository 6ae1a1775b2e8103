import threading
import time

import pytest
import torch

import torchbend as tb
from conftest import ConvVAE, assert_unchanged, seeded, state_snapshot
from torchbend.bending.target import Target

ALL = [
    lambda: tb.Rotate(tb.BendingParameter("p", 30.0)),
    lambda: tb.Translate(tb.BendingParameter("p", 0.2), -0.1, padding="wrap"),
    lambda: tb.Zoom(tb.BendingParameter("p", 1.5), padding="reflection"),
    lambda: tb.Flip(-2),
    lambda: tb.Erode(tb.BendingParameter("p", 3)),
    lambda: tb.Dilate(3),
    lambda: tb.Invert(),
    lambda: tb.Invert(tb.BendingParameter("p", 0.0), 1.0),
    lambda: tb.BinaryThreshold(tb.BendingParameter("p", 0.1)),
    lambda: tb.Ablate(),
    lambda: tb.Clamp(tb.BendingParameter("p", -0.1), 0.2),
    lambda: tb.Quantize(tb.BendingParameter("p", 3)),
    lambda: tb.Sobel(),
    lambda: tb.Blur(tb.BendingParameter("p", 0.8)),
]


def act_target(shape=(2, 6, 5, 5)):
    return Target("f:a", "activation", shape)


def run(cb, x, target):
    return cb(x, cb.setup(target))


def test_other_channels_are_bit_identical_and_selected_ones_bent():
    x = torch.randn(2, 6, 5, 5)
    cb = tb.Select(tb.Rotate(90), [1, 4])
    out = run(cb, x, act_target())
    others = [0, 2, 3, 5]
    assert torch.equal(out[:, others], x[:, others])
    torch.testing.assert_close(out[:, [1, 4]], torch.rot90(x[:, [1, 4]], 1, (-2, -1)), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "channels", [[1, 4], [False, True, False, False, True, False], slice(1, 5, 3), "1:5:3", torch.tensor([4, 1])]
)
def test_channel_forms_agree(channels):
    x = torch.randn(2, 6, 3, 3)
    out = run(tb.Select(tb.Ablate(), channels), x, act_target((2, 6, 3, 3)))
    expected = x.clone()
    expected[:, [1, 4]] = 0
    assert torch.equal(out, expected)


def test_weights_default_to_output_channels_and_inner_state_is_sized_for_the_slice():
    w = torch.randn(4, 3, 2, 2)
    cb = tb.Select(tb.Mask(0.5, seed=0), [0, 2])
    state = cb.setup(Target("conv.weight", "weight", (4, 3, 2, 2)))
    out = cb(w, state)
    assert torch.equal(out[[1, 3]], w[[1, 3]])
    sel = out[[0, 2]]
    assert ((sel == 0) | (sel == w[[0, 2]])).all() and (sel == 0).any()  # some weights of the slice masked
    out_dim1 = run(tb.Select(tb.Ablate(), [2], channel_dim=1), w, Target("conv.weight", "weight", (4, 3, 2, 2)))
    assert torch.equal(out_dim1[:, :2], w[:, :2]) and out_dim1[:, 2].abs().sum() == 0


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: tb.Select(lambda x: x, [0]), "Select: callback must be a bending callback"),
        (lambda: tb.Select(tb.Ablate(), []), "Select: channels is empty"),
        (lambda: tb.Select(tb.Ablate(), [1, 1]), "twice"),
        (lambda: tb.Select(tb.Ablate(), [0.5]), "all ints or all bools"),
        (lambda: tb.Select(tb.Ablate(), "1-3"), "start:stop"),
        (lambda: tb.Select(tb.Ablate(), [0], channel_dim="1"), "channel_dim must be an int"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises((TypeError, ValueError), match=message):
        make()


def test_shape_errors_at_bend_time_leave_no_bend():
    bended = tb.BendedModule(seeded(ConvVAE()).eval())
    bended.trace("decode", z=torch.randn(2, 8))
    with pytest.raises(tb.BendingError, match=r"channels \[9\] are out of range .*valid: 0..3"):
        bended.bend(tb.Select(tb.Ablate(), [9]), "decoder_net_convt0", fn="decode")
    with pytest.raises(tb.BendingError, match="batch axis"):
        bended.bend(tb.Select(tb.Ablate(), [0], channel_dim=0), "decoder_net_convt0", fn="decode")
    with pytest.raises(tb.BendingError, match="mask has 3 entries"):
        bended.bend(tb.Select(tb.Ablate(), [True, False, True]), "decoder_net_convt0", fn="decode")
    assert not bended.bends


def test_through_bended_module_model_untouched_and_reset_exact():
    vae = seeded(ConvVAE()).eval()
    snap = state_snapshot(vae)
    bended = tb.BendedModule(vae)
    z = torch.randn(3, 8)
    bended.trace("decode", z=z)
    plain_act = bended.get_activations("decoder_net_convt0", fn="decode", z=z)["decoder_net_convt0"]
    bended.bend(tb.Select(tb.Invert(), [0, 2]), "decoder_net_convt0", fn="decode")
    bent_act = bended.get_activations("decoder_net_convt0", fn="decode", z=z, after_bends=True)["decoder_net_convt0"]
    assert torch.equal(bent_act[:, [1, 3]], plain_act[:, [1, 3]])
    assert not torch.equal(bent_act[:, [0, 2]], plain_act[:, [0, 2]])
    plain = vae.decode(z)
    assert not torch.equal(bended.decode(z=z), plain)
    bended.reset()
    assert torch.equal(bended.decode(z=z), plain)
    assert_unchanged(vae, snap)


@pytest.mark.parametrize("make", ALL)
@pytest.mark.parametrize("selected", [False, True])
def test_scripted_equals_eager_with_live_parameters(make, selected):
    bended = tb.BendedModule(seeded(ConvVAE()).eval())
    z = torch.randn(2, 8)
    bended.trace("decode", z=z)
    cb = make()
    cb = tb.Select(cb, [1, 2]) if selected else cb
    bended.bend(cb, "decoder_net_convt0", fn="decode")
    scripted = bended.script()
    torch.testing.assert_close(scripted.decode(z), bended.decode(z=z))
    params = list(cb.live_parameters())
    if params:
        p = params[0]
        new = p.value + (2 if isinstance(p.value, int) else 0.1)
        p.value = new
        getattr(scripted, f"set_{p.name}")(new)
        torch.testing.assert_close(scripted.decode(z), bended.decode(z=z))


def test_chain_inside_select_scripted():
    bended = tb.BendedModule(seeded(ConvVAE()).eval())
    z = torch.randn(2, 8)
    bended.trace("decode", z=z)
    bended.bend(tb.Select(tb.Bias(1.0) >> tb.Scale(-2.0) >> tb.Blur(0.5), [0, 3]), "decoder_net_convt0", fn="decode")
    torch.testing.assert_close(bended.script().decode(z), bended.decode(z=z))


def test_weight_bend_scripted():
    bended = tb.BendedModule(seeded(ConvVAE()).eval())
    z = torch.randn(2, 8)
    bended.trace("decode", z=z)
    bended.bend(tb.Select(tb.Rotate(90), [1, 3]), "decoder.net.convt0.weight")
    torch.testing.assert_close(bended.script().decode(z), bended.decode(z=z))


@pytest.mark.parametrize("make", ALL)
def test_config_round_trip(make, tmp_path):
    cb = tb.Select(make(), [0, 3], group="cluster_1")
    config = tb.BendingConfig((cb, "decode:decoder_net_convt0"))
    config.save(tmp_path / "c.json")
    loaded = tb.BendingConfig.load(tmp_path / "c.json")
    ((back, targets),) = list(loaded)
    assert targets == ["decode:decoder_net_convt0"]
    assert type(back.callback) is type(cb.callback)
    assert (back.channels, back.group, back.channel_dim) == ([0, 3], "cluster_1", None)
    x = torch.randn(2, 4, 5, 5)
    target = act_target((2, 4, 5, 5))
    torch.testing.assert_close(run(back, x, target), run(cb, x, target))
    assert loaded.to_dict() == config.to_dict()


def test_live_parameter_changed_from_another_thread():
    bended = tb.BendedModule(seeded(ConvVAE()).eval())
    z = torch.randn(2, 8)
    bended.trace("decode", z=z)
    angle = tb.BendingParameter("angle", 0.0)
    bended.bend(tb.Select(tb.Rotate(angle), [0, 1]), "decoder_net_convt0", fn="decode")
    expected = {}
    for v in (0.0, 90.0, 180.0):
        angle.value = v
        expected[v] = bended.decode(z=z)
    stop = threading.Event()

    def turn():
        while not stop.is_set():
            for v in (0.0, 90.0, 180.0):
                angle.value = v
                time.sleep(0.0005)

    thread = threading.Thread(target=turn)
    thread.start()
    try:
        for _ in range(20):
            out = bended.decode(z=z)
            assert any(torch.equal(out, e) for e in expected.values())
    finally:
        stop.set()
        thread.join()


def test_bend_with_channels_keeps_the_other_channels_bit_identical():
    import torchbend as tb
    from torchbend.zoo import load_mnist_vae

    vae = load_mnist_vae()
    z = torch.randn(2, 64, generator=torch.Generator().manual_seed(0))
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    plain = bended.get_activations("decoder_net_convt1", z=z, fn="decode", after_bends=True)["decoder_net_convt1"]
    bended.bend(tb.Scale(0.0), "decoder_net_convt1", fn="decode", channels=[0, 3])
    bent = bended.get_activations("decoder_net_convt1", z=z, fn="decode", after_bends=True)["decoder_net_convt1"]
    assert torch.equal(bent[:, [0, 3]], torch.zeros_like(bent[:, [0, 3]]))
    keep = [c for c in range(plain.shape[1]) if c not in (0, 3)]
    assert torch.equal(bent[:, keep], plain[:, keep])
