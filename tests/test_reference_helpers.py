"""The reference torchbend's helper calls that its users write: print_* to a file, is_traced, bendable_keys,
bended_keys, bending_callbacks, compare_outs, compare_state_dict_tensors."""

import io

import pytest
import torch

import torchbend as tb


def test_print_weights_and_activations_write_to_a_file_or_a_path(vae, z, tmp_path, capsys):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    stream = io.StringIO()
    bended.print_weights(r"decoder\.net\..*", out=stream)
    text = stream.getvalue()
    assert "decoder.net.convt1.weight" in text and "encoder" not in text
    path = tmp_path / "logs" / "acts.txt"  # its folder is made
    bended.print_activations("decode", out=path)
    assert "decoder_net_convt1" in path.read_text()
    assert capsys.readouterr().out == ""  # written, not printed
    bended.print_weights(r"decoder\.fc\.bias")
    assert "decoder.fc.bias" in capsys.readouterr().out


def test_is_traced_bendable_keys_bended_keys_and_bending_callbacks(vae, z):
    bended = tb.BendedModule(vae)
    assert not bended.is_traced("decode")
    assert bended.bendable_keys(r"decoder\.net\.convt1.*", fn="decode") == [
        "decoder.net.convt1.weight",
        "decoder.net.convt1.bias",
    ]
    bended.trace("decode", z=z)
    assert bended.is_traced("decode") and not bended.is_traced()
    assert bended.bendable_keys(r"decoder\.net\.convt1.*", r"decoder_net_convt1", fn="decode") == [
        "decoder.net.convt1.weight",
        "decoder.net.convt1.bias",
        "decoder_net_convt1",
    ]
    with pytest.raises(tb.UnknownNameError, match="nothing_here"):
        bended.bendable_keys("nothing_here", fn="decode")
    assert bended.bended_keys("decode") == [] and bended.bending_callbacks == []
    scale, mask = tb.Scale(2.0), tb.Mask(0.5, seed=0)
    bended.bend(scale, "decoder_net_convt1", "decoder.net.convt0.weight")
    bended.bend(mask, "decoder.net.convt1.weight")
    bended.bend(scale, "decoder_net_relu0")
    assert bended.bended_keys("decode") == [
        "decoder.net.convt0.weight",
        "decoder.net.convt1.weight",
        "decoder_net_relu0",
        "decoder_net_convt1",
    ]  # weights, then graph order
    assert bended.bended_keys("forward") == ["decoder.net.convt0.weight", "decoder.net.convt1.weight"]
    assert bended.bending_callbacks == [scale, mask]
    bended.reset()
    assert bended.bended_keys("decode") == [] and bended.bending_callbacks == []


def test_compare_outs_walks_structures_and_distributions():
    a = torch.randn(3, 4)
    assert tb.compare_outs((a, [a, {"k": a}], 3, "s"), (a.clone(), [a + 1e-9, {"k": a}], 3, "s"))
    assert not tb.compare_outs((a,), [a])  # a tuple is not a list
    assert not tb.compare_outs({"k": a}, {"j": a})
    assert not tb.compare_outs(a, a[:2]) and not tb.compare_outs(a, a.double()) and not tb.compare_outs(a, a + 1)
    assert not tb.compare_outs(a, 1.0) and not tb.compare_outs(1, 1.0) and not tb.compare_outs([a], [a, a])
    normal = torch.distributions.Normal(a, a.abs() + 1)
    assert tb.compare_outs(normal, torch.distributions.Normal(a.clone(), a.abs() + 1))
    assert not tb.compare_outs(normal, torch.distributions.Normal(a, a.abs() + 2))
    assert not tb.compare_outs(normal, torch.distributions.Uniform(a, a + 1)) and not tb.compare_outs(normal, a)
    assert tb.compare_outs(normal, tb.distributions.Normal(a, a.abs() + 1))  # torch's and ours, alike
    beta = torch.distributions.Beta(a.abs() + 1, a.abs() + 2)  # a kind tb.distributions lacks
    assert tb.compare_outs(beta, torch.distributions.Beta(a.abs() + 1, a.abs() + 2))
    assert not tb.compare_outs(beta, torch.distributions.Beta(a.abs() + 1, a.abs() + 3))


def test_compare_state_dict_tensors(vae):
    bended = tb.BendedModule(vae)
    state = vae.state_dict()
    assert tb.compare_state_dict_tensors(state, bended.state_dict())
    bended.bend(tb.Scale(2.0), "decoder.net.convt1.weight")
    assert tb.compare_state_dict_tensors(state, bended.state_dict())  # the module's own: never bent
    assert not tb.compare_state_dict_tensors(state, bended.bended_state_dict())
    assert not tb.compare_state_dict_tensors(state, {k: v for k, v in state.items() if k != "decoder.fc.bias"})
