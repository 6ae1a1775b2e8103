import pytest
import torch
from torch import nn

import torchbend as tb
from conftest import (
    Attention,
    CatUser,
    ConvVAE,
    IfOnValue,
    Recurrent,
    Residual,
    ShapeLoop,
    Tied,
    assert_unchanged,
    seeded,
    state_snapshot,
)

DECODER_WEIGHTS = ["decoder.fc.weight", "decoder.net.convt0.weight", "decoder.net.convt1.weight"]


def test_wraps_without_copying(vae):
    bended = tb.BendedModule(vae)
    assert bended.module is vae
    with pytest.raises(TypeError, match="torch.nn.Module"):
        tb.BendedModule(lambda x: x)


def test_unbent_calls_equal_plain_outputs_exactly(vae, z):
    bended = tb.BendedModule(vae)
    x = torch.rand(5, 1, 28, 28)
    assert torch.equal(bended.decode(z), vae.decode(z))  # untraced
    bended.trace("decode", z=z)
    bended.trace("forward", x)
    assert torch.equal(bended.decode(z=z), vae.decode(z))
    assert torch.equal(bended.decode(z), vae.decode(z))
    assert torch.equal(bended(x), vae(x))
    assert torch.equal(bended.forward(x), vae(x))
    mu, var = bended.encode(x)
    assert torch.equal(mu, vae.encode(x)[0]) and torch.equal(var, vae.encode(x)[1])


def test_other_attributes_pass_through(vae):
    bended = tb.BendedModule(vae)
    assert bended.decoder is vae.decoder
    assert bended.training is False
    with pytest.raises(AttributeError):
        _ = bended.no_such_thing


def test_weight_bend_changes_output_and_reset_restores(vae, z):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    plain = vae.decode(z)
    snapshot = state_snapshot(vae)
    bended.bend(tb.Scale(0.0), "decoder.net.convt1.weight")
    out = bended.decode(z=z)
    # with a zero weight, the last layer outputs sigmoid(bias) everywhere
    expected = torch.sigmoid(vae.decoder["net"].convt1.bias).expand_as(out)
    assert torch.allclose(out, expected)
    assert_unchanged(vae, snapshot)
    bended.reset()
    assert torch.equal(bended.decode(z=z), plain)


def test_untraced_methods_see_weight_bends(vae):
    bended = tb.BendedModule(vae)
    x = torch.rand(3, 1, 28, 28)
    bended.bend(tb.Scale(0.0), "encoder.7.weight")
    mu, _ = bended.encode(x)
    assert torch.allclose(mu, vae.encoder[7].bias[:8].expand_as(mu))


def test_activation_bend(vae, z):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    bended.bend(tb.Scale(0.0), "decoder_net_convt1", fn="decode")
    out = bended.decode(z)
    assert torch.allclose(out, torch.full_like(out, 0.5))  # sigmoid(0)


def test_two_bends_compose_in_order_on_weights_and_activations(vae, z):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    w = vae.decoder["net"].convt0.weight
    bended.bend(tb.Scale(2), "decoder.net.convt0.weight")
    bended.bend(tb.Scale(3), "decoder.net.convt0.weight")
    assert torch.allclose(bended.bended_state_dict()["decoder.net.convt0.weight"], w * 6)
    bended.bend(tb.Bias(1), "decoder.net.convt1.weight")
    bended.bend(tb.Scale(2), "decoder.net.convt1.weight")
    w1 = vae.decoder["net"].convt1.weight
    assert torch.allclose(bended.bended_state_dict()["decoder.net.convt1.weight"], (w1 + 1) * 2)

    bended.reset()
    acts = tb.BendedModule(Residual())
    x = torch.randn(2, 4, 5)
    acts.trace("forward", x)
    plain_conv1 = acts.module.conv1(x)
    expected = x + acts.module.conv2(torch.relu(plain_conv1 * 2 + 1))
    acts.bend(tb.Scale(2), "conv1")
    acts.bend(tb.Bias(1), "conv1")
    assert torch.allclose(acts(x), expected)


def test_activation_bend_reaches_list_tuple_and_keyword_uses():
    model = seeded(CatUser())
    bended = tb.BendedModule(model)
    x = torch.randn(2, 3)
    bended.trace("forward", x)
    bended.bend(tb.Scale(0.0), "lin")
    out = bended(x)
    assert torch.equal(out[:, :3], torch.zeros(2, 3))  # cat([a, x])
    assert torch.equal(out[:, 3:6], x)
    assert torch.equal(out[:, 6:9], torch.zeros(2, 3))  # stack((a, a))
    assert torch.equal(out[:, 9:], x)  # add(x, other=a)


def test_traced_at_batch_16_runs_bent_at_batch_3(vae, z):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    bended.bend(tb.Mask(0.5, seed=0), "decoder_net_convt0", fn="decode")
    bended.bend(tb.Normal(0.5, seed=0), "decoder_net_bn0", fn="decode")
    bended.bend(tb.Mask(0.5, seed=0), "decoder.net.convt1.weight")
    small = z[:3]
    out3 = bended.decode(small)
    assert out3.shape == (3, 1, 28, 28)
    # a batch-agnostic draw gives each item the output it gets inside the bigger batch
    assert torch.allclose(out3, bended.decode(z)[:3], atol=1e-6)
    assert not torch.allclose(out3, vae.decode(small))


def test_mask_with_dim_on_batch_axis_is_sized_by_the_trace(vae, z):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    bended.bend(tb.Mask(0.5, dim=0), "decoder_net_convt0", fn="decode")
    assert bended.decode(z).shape[0] == 16
    with pytest.raises(
        tb.SpecializationError,
        match=r"z has shape \(3, 8\), but decode was traced with z of shape "
        r"\(16, 8\).*must match the size",
    ):  # the mask needs the traced batch: named, not raw
        bended.decode(z[:3])


def test_bend_handle_is_a_context_manager(vae, z):
    bended = tb.BendedModule(vae)
    plain = vae.decode(z)
    with bended.bend(tb.Scale(3), "decoder.fc.weight") as handle:
        assert handle.targets[0].name == "decoder.fc.weight"
        assert not torch.allclose(bended.decode(z), plain)
    assert bended.bends == []
    assert torch.equal(bended.decode(z), plain)


def test_bend_by_regex_hits_weights_and_activations_in_order(vae, z):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    with pytest.warns(UserWarning, match="matches weights .* and activations"):
        handle = bended.bend(tb.Scale(1.0), r"decoder.net.convt.*")
    names = [t.qualified for t in handle.targets]
    assert names == [
        "decoder.net.convt0.weight",
        "decoder.net.convt0.bias",
        "decoder.net.convt1.weight",
        "decoder.net.convt1.bias",
        "decode:decoder_net_convt0",
        "decode:decoder_net_convt1",
    ]


def test_qualified_activation_names(vae, z):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    bended.trace("forward", torch.rand(2, 1, 28, 28))
    handle = bended.bend(tb.Scale(1.0), "decode:decoder_net_convt0")
    assert [t.qualified for t in handle.targets] == ["decode:decoder_net_convt0"]
    both = bended.bend(tb.Scale(1.0), "decoder_net_convt0")
    assert [t.qualified for t in both.targets] == ["decode:decoder_net_convt0", "forward:decoder_net_convt0"]
    only = bended.bend(tb.Scale(1.0), "decoder_net_convt0", fn="forward")
    assert [t.qualified for t in only.targets] == ["forward:decoder_net_convt0"]


def test_bad_targets_raise_with_closest_names(vae, z):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    with pytest.raises(tb.UnknownNameError, match="decoder.net.convt0.weight"):
        bended.bend(tb.Scale(2), "decoder.net.convt0.wieght")
    with pytest.raises(tb.UnknownNameError, match="decoder_net_convt0"):
        bended.bend(tb.Scale(2), "decoder_net_cnvt0")
    with pytest.raises(tb.BendingError, match="not traced"):
        bended.bend(tb.Scale(2), "x", fn="encode")
    with pytest.raises(TypeError, match="callback"):
        bended.bend("decoder.fc.weight", tb.Scale(2))
    with pytest.raises(tb.BendingError, match="not a tensor"):
        bended.bend(tb.Scale(2), "getattr_1", fn="decode")
    assert bended.bends == []


def test_callback_that_cannot_bend_that_kind_raises(vae, z):
    class ActivationOnly(tb.BendingCallback):
        weights = False

        def forward(self, x, state):
            return x

    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    with pytest.raises(tb.BendingError, match="cannot bend weights"):
        bended.bend(ActivationOnly(), "decoder.fc.weight")
    bended.bend(ActivationOnly(), "decoder_net_convt0")


def test_inspection(vae, z):
    bended = tb.BendedModule(vae)
    assert bended.weight_names == [n for n, _ in vae.named_parameters()]
    assert bended.resolve_parameters(r"decoder.net.convt.*weight.*", "decoder.fc.weight") == DECODER_WEIGHTS
    with pytest.raises(tb.BendingError, match="not traced"):
        bended.activation_names("decode")
    bended.trace("decode", z=z)
    names = bended.activation_names("decode")
    assert names[0] == "z" and "decoder_net_convt1" in names
    assert bended.resolve_activations(r"decoder_net_convt.*", fn="decode") == [
        "decoder_net_convt0",
        "decoder_net_convt1",
    ]
    assert bended.resolve_activations("decode:decoder_net_bn0", fn="decode") == ["decoder_net_bn0"]
    assert bended.activation_shape("decoder_net_convt0", fn="decode") == (16, 4, 14, 14)
    with pytest.raises(tb.UnknownNameError):
        bended.activation_shape("decoder_net_convt9", fn="decode")


def test_tables_list_every_weight_and_activation(vae, z, capsys):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    bended.bend(tb.Scale(2), "decoder.fc.weight")
    table = bended.weights_table(r"decoder\.fc\..*")
    assert [row[0] for row in table.rows] == ["decoder.fc.weight", "decoder.fc.bias"]
    w = vae.decoder["fc"].weight
    assert table.rows[0][1] == "(392, 8)" and float(table.rows[0][3]) == pytest.approx(w.min().item(), rel=1e-3)
    assert table.rows[0][-1] == "Scale"
    bended.print_activations("decode")
    printed = capsys.readouterr().out
    assert "decoder_net_convt0" in printed and "(16, 4, 14, 14)" in printed
    assert "<details" in bended.activations_table("decode")._repr_html_()
    assert bended.activations_table("decode", pattern="decoder_net_convt.*").names() == [
        "decoder_net_convt0",
        "decoder_net_convt1",
    ]


def test_trace_accepts_positional_keyword_and_builtin_named_inputs():
    seq = seeded(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
    bended = tb.BendedModule(seq)
    x = torch.randn(5, 3)
    bended.trace("forward", input=x)  # nn.Sequential's argument is named `input`
    assert bended.activation_names()[0] == "input_1"
    bended.bend(tb.Scale(0.0), "_1")
    assert torch.equal(bended(x), seq[2].bias.expand(5, 2))
    bended.trace("forward", x)
    assert torch.equal(bended(input=x), seq[2].bias.expand(5, 2))


def test_retrace_keeps_activation_bends_and_replaces_the_record(vae, z):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    bended.bend(tb.Scale(0.0), "decoder_net_convt1", fn="decode")
    bended.trace("decode", z=z[:4])
    assert bended.activation_shape("decoder_net_convt1", "decode") == (4, 1, 28, 28)
    assert torch.allclose(bended.decode(z), torch.full((16, 1, 28, 28), 0.5))
    with pytest.raises(TypeError, match="method name first"):
        bended.trace(z)
    with pytest.raises(AttributeError, match="decode"):
        bended.trace("decod", z)


def test_baked_arguments_are_checked():
    class WithFlag(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, x, scale=1.0):
            return self.lin(x) * scale

    bended = tb.BendedModule(seeded(WithFlag()))
    x = torch.randn(3, 2)
    bended.trace("forward", x, scale=2.0)
    assert torch.equal(bended(x, scale=2.0), bended.module(x, scale=2.0))
    with pytest.raises(tb.TraceError, match="scale=2.0"):
        bended(x)


def test_live_parameter_changes_without_retrace(vae, z):
    def expected(s):
        with torch.no_grad():
            w = vae.decoder["fc"].weight * s
            h = torch.nn.functional.linear(z, w, vae.decoder["fc"].bias).view(16, 8, 7, 7)
            net = vae.decoder["net"]
            return net.out(net.convt1(net.relu0(net.bn0(net.convt0(h) * (2 * s)))))

    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    scale = tb.BendingParameter("scale", 1.0)
    bended.bend(tb.Scale(scale), "decoder.fc.weight")
    bended.bend(tb.Scale(2 * scale), "decoder_net_convt0", fn="decode")
    assert bended.controllables == {"scale": scale}
    assert torch.allclose(bended.decode(z), expected(1.0), atol=1e-6)
    program = bended.engine.snapshot().runner("decode").program
    bended.update("scale", 0.5)
    assert torch.allclose(bended.decode(z), expected(0.5), atol=1e-6)
    scale.value = -0.25
    assert torch.allclose(bended.decode(z), expected(-0.25), atol=1e-6)
    assert bended.engine.snapshot().runner("decode").program is program  # a parameter change compiles nothing
    with pytest.raises(tb.UnknownNameError, match="scale"):
        bended.update("scael", 1.0)


def test_parameter_name_clash_raises(vae):
    bended = tb.BendedModule(vae)
    bended.bend(tb.Scale(tb.BendingParameter("k", 1.0)), "decoder.fc.weight")
    with pytest.raises(tb.BendingError, match="'k'"):
        bended.bend(tb.Scale(tb.BendingParameter("k", 2.0)), "decoder.fc.bias")


def test_reset_then_update_of_an_old_parameter_does_nothing(vae, z):
    bended = tb.BendedModule(vae)
    p = tb.BendingParameter("k", 1.0)
    bended.bend(tb.Scale(p), "decoder.fc.weight")
    bended.reset()
    p.value = 3.0
    assert bended.controllables == {}
    assert torch.equal(bended.decode(z), vae.decode(z))


def test_original_weight_changes_are_followed(vae, z):
    bended = tb.BendedModule(vae)
    bended.bend(tb.Scale(2.0), "decoder.fc.weight")
    bended.decode(z)
    with torch.no_grad():
        vae.decoder["fc"].weight.mul_(0.5)
    assert torch.allclose(bended.bended_state_dict()["decoder.fc.weight"], vae.decoder["fc"].weight * 2)


def test_bended_state_dict_leaves_the_module_alone(vae):
    bended = tb.BendedModule(vae)
    bended.bend(tb.Bias(1.0), "decoder.fc.bias")
    state = bended.bended_state_dict()
    assert torch.equal(state["decoder.fc.bias"], vae.decoder["fc"].bias + 1)
    assert torch.equal(state["decoder.fc.weight"], vae.decoder["fc"].weight)
    assert set(state) == set(vae.state_dict())


def test_in_place_lambda_cannot_corrupt_the_model(vae, z):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    snapshot = state_snapshot(vae)
    z_copy = z.clone()
    bended.bend(tb.Lambda(lambda t: t.mul_(0)), "decoder.fc.weight", "z")
    bended.decode(z)
    assert_unchanged(vae, snapshot)
    assert torch.equal(z, z_copy)


def test_tracing_restores_batchnorm_statistics_in_training_mode():
    model = seeded(ConvVAE()).train()
    snapshot = state_snapshot(model)
    tb.BendedModule(model).trace("forward", torch.rand(4, 1, 28, 28))
    assert_unchanged(model, snapshot)


@pytest.mark.parametrize(
    "model_cls, shape, activation",
    [
        (Residual, (2, 4, 6), "conv1"),
        (ShapeLoop, (2, 3, 5), "proj_2"),
        (IfOnValue, (3, 4), "a"),
        (Attention, (2, 5, 4), "getitem"),  # the attention output, first of the (output, weights) pair
        (Recurrent, (2, 7, 3), "getitem"),  # the LSTM's output sequence
        (Tied, (3, 6), "tanh"),
    ],
)
def test_model_corpus_traces_bends_and_resets(model_cls, shape, activation):
    model = seeded(model_cls())
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(2))
    bended = tb.BendedModule(model)
    bended.trace("forward", x)
    plain = model(x)
    assert torch.equal(bended(x), plain)
    snapshot = state_snapshot(model)

    weight = bended.weight_names[0]
    bended.bend(tb.Scale(-1.5), weight)
    weight_bent = bended(x)
    assert not torch.allclose(weight_bent, plain)
    bended.reset()

    bended.bend(tb.Bias(0.7), activation)
    assert not torch.allclose(bended(x), plain)
    bended.reset()
    assert torch.equal(bended(x), plain)
    assert_unchanged(model, snapshot)


def test_shape_loop_runs_at_another_batch_and_guards_the_loop_length():
    model = seeded(ShapeLoop())
    bended = tb.BendedModule(model)
    bended.trace("forward", torch.randn(2, 3, 5))
    x = torch.randn(7, 3, 5)
    assert torch.allclose(bended(x), model(x), atol=1e-6)
    with pytest.raises(tb.SpecializationError, match="range"):
        bended(torch.randn(2, 3, 6))


def test_lstm_weight_bend_reaches_the_recurrent_kernel():
    model = seeded(Recurrent())
    bended = tb.BendedModule(model)
    x = torch.randn(2, 7, 3)
    bended.bend(tb.Scale(0.0), "lstm.weight_hh_l0")
    expected_model = seeded(Recurrent())
    with torch.no_grad():
        expected_model.lstm.weight_hh_l0.zero_()
    assert torch.allclose(bended(x), expected_model(x), atol=1e-6)
    assert torch.equal(model(x), seeded(Recurrent())(x))


def test_tied_weight_is_bent_everywhere_it_is_used():
    model = seeded(Tied())
    bended = tb.BendedModule(model)
    assert bended.weight_names == ["enc.weight"]
    x = torch.randn(3, 6)
    bended.trace("forward", x)
    bended.bend(tb.Scale(2.0), "enc.weight")
    w = model.enc.weight * 2
    expected = torch.nn.functional.linear(torch.tanh(x @ w.t()), w.t())
    assert torch.allclose(bended(x), expected, atol=1e-6)
    assert set(bended.bended_state_dict()) == {"enc.weight", "dec.weight"}
    assert torch.equal(bended.bended_state_dict()["dec.weight"], w)


def test_retrace_on_a_call_that_breaks_a_decision():
    model = seeded(ShapeLoop())
    bended = tb.BendedModule(model)
    bended.trace("forward", torch.randn(2, 3, 5), retrace=True)
    bended.bend(tb.Scale(0.0), "proj")  # the first loop step's projection
    x = torch.randn(2, 3, 6)
    out = bended(x)  # another loop length: traced again, bend kept
    expected = sum(model.proj(x[..., t]) * (1.0 if t < 3 else 0.5) for t in range(1, 6)) / 6
    assert torch.allclose(out, expected, atol=1e-6)
    assert bended.activation_shape("x") == (2, 3, 6)
    assert ["retraced", "1", "times, on calls that broke a decision"] in bended.trace_report().rows


def test_bendable_buffers_are_opt_in_and_never_written():
    model = seeded(ConvVAE())
    snapshot = state_snapshot(model)
    with pytest.raises(tb.UnknownNameError, match=r"buffers=\['decoder.net.bn0.running_mean'\]"):
        tb.BendedModule(model).bend(tb.Scale(2.0), "decoder.net.bn0.running_mean")
    bended = tb.BendedModule(model, buffers=[r".*running_mean"])
    assert bended.buffer_names == ["encoder.1.running_mean", "decoder.net.bn0.running_mean"]
    assert bended.resolve_buffers(r"decoder.*") == ["decoder.net.bn0.running_mean"]
    z = torch.randn(3, 8)
    plain = model.decode(z)
    bended.bend(tb.Bias(1.0), "decoder.net.bn0.running_mean")
    net = model.decoder["net"]
    h = net.convt0(model.decoder["fc"](z).view(3, 8, 7, 7))
    bn = torch.nn.functional.batch_norm(
        h, net.bn0.running_mean + 1, net.bn0.running_var, net.bn0.weight, net.bn0.bias, eps=net.bn0.eps
    )
    assert torch.allclose(bended.decode(z), net.out(net.convt1(net.relu0(bn))), atol=1e-6)
    state = bended.bended_state_dict()
    assert torch.equal(state["decoder.net.bn0.running_mean"], net.bn0.running_mean + 1)
    assert any(row[0] == "decoder.net.bn0.running_mean" for row in bended.weights_table().rows)
    bended.reset()
    assert torch.equal(bended.decode(z), plain)
    assert_unchanged(model, snapshot)


def test_to_moves_and_casts_in_place_with_the_bends(vae, z):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    bended.bend(tb.Mask(0.5, seed=0), "decoder.net.convt0.weight")
    bended.bend(tb.Normal(0.1, seed=0), "decoder_net_relu0")
    out32 = bended.decode(z)
    assert bended.to(torch.float64) is bended
    assert vae.decoder["fc"].weight.dtype == torch.float64
    out64 = bended.decode(z.double())
    assert out64.dtype == torch.float64 and torch.allclose(out64.float(), out32, atol=1e-5)
    bended.to(dtype=torch.float32)
    assert torch.allclose(bended.decode(z), out32, atol=1e-6)


def test_module_methods_run_on_the_module_itself(vae):
    bended = tb.BendedModule(vae)
    bended.bend(tb.Scale(2.0), "decoder.fc.weight")
    state = bended.state_dict()  # nn.Module's own method: the original weights
    assert torch.equal(state["decoder.fc.weight"], vae.decoder["fc"].weight)
    assert bended.train() is vae and vae.training
    bended.eval()
    assert not vae.training


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_to_cuda_moves_module_constants_and_bends():
    model = seeded(ConvVAE())
    bended = tb.BendedModule(model)
    z = torch.randn(4, 8)
    bended.trace("decode", z=z)  # traced on the CPU
    bended.bend(tb.Mask(0.5, seed=0), "decoder.net.convt0.weight")
    bended.bend(tb.Normal(0.2, seed=0), "decoder_net_relu0")
    expected = bended.decode(z)
    bended.cuda()
    assert next(model.parameters()).is_cuda
    out = bended.decode(z.cuda())
    assert out.is_cuda and torch.allclose(out.cpu(), expected, atol=1e-5)
    bended.cpu()
    assert torch.allclose(bended.decode(z), expected, atol=1e-6)


def test_model_methods_hidden_by_torchbend_names_warn_and_stay_reachable(z):
    class Streaming(ConvVAE):
        def reset(self):  # e.g. clearing streaming caches
            return "the model's own reset"

        def update(self, x):
            return self.decode(x)

    model = seeded(Streaming())
    with pytest.warns(UserWarning, match=r"defines reset, update.*bended.method\('reset'\)"):
        bended = tb.BendedModule(model)
    assert bended.method("reset")() == "the model's own reset"
    bended.bend(tb.Scale(0.0), "decoder.net.convt1.weight")
    assert torch.allclose(bended.method("update")(z), bended.decode(z))
    with pytest.raises(AttributeError, match="no method 'eval' of its own"):
        bended.method("eval")
