"""Bending TorchScript files: a RAVE-like streaming model, a Sequential, and control flow."""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Optional

import pytest
import torch
from torch import nn

import torchbend as tb
from torchbend.errors import BendingError
from torchbend.zoo.streaming import make_streaming_model


class Looping(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, n: int = 2) -> torch.Tensor:
        h = self.lin(x)
        for _ in range(n):
            h = torch.tanh(h) * 2
        if bool(h.sum() > 0):
            h = h + 1
        return h


class InPlace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        h.add_(1.0)
        return h * 2


class Rates(nn.Module):
    """A branch that raises: TorchScript gives the value it assigns an uninitialized placeholder."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, sr: int = 16000) -> torch.Tensor:
        if sr == 16000:
            y = x
        elif sr == 8000:
            y = x * 2
        else:
            raise ValueError("bad rate")
        return self.lin(y)


def save_load(module: nn.Module, tmp_path, name: str = "model.ts") -> torch.jit.ScriptModule:
    torch.manual_seed(0)
    path = tmp_path / name
    torch.jit.save(torch.jit.script(module.eval()), str(path))
    return torch.jit.load(str(path))


@pytest.fixture
def rave(tmp_path) -> torch.jit.ScriptModule:
    return save_load(make_streaming_model(), tmp_path)


def state(module: torch.jit.ScriptModule) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_names_are_module_paths_and_debug_names(rave):
    bent = tb.BendedModule(rave)
    bent.trace("decode", torch.randn(1, 4, 8))
    names = bent.activation_names("decode")
    assert names[0] == "z.1"
    assert any(n.startswith("decoder.2:") for n in names)  # the ConvTranspose1d
    assert len(set(names)) == len(names)
    convt = next(n for n in names if n.startswith("decoder.2:"))
    assert bent.activation_shape(convt, fn="decode") == (1, 8, 32)


def test_reset_is_bit_exact_and_loaded_state_unchanged(rave):
    before = state(rave)
    bent = tb.BendedModule(rave)
    z = torch.randn(1, 4, 8)
    bent.trace("decode", z)
    bent.bend(tb.Scale(0.0), "decoder.2.weight")
    bent.bend(tb.Bias(1.0), "decode:" + bent.activation_names("decode")[3])
    bent.decode(z)
    bent.encode(torch.randn(1, 1, 32))
    for name, value in state(rave).items():
        assert torch.equal(value, before[name]), name
    bent.reset()
    fresh = tb.BendedModule(rave)
    xs = [torch.randn(1, 4, 8) for _ in range(3)]
    mine = [fresh.decode(x) for x in xs]
    plain = [rave.decode(x) for x in xs]
    for a, b in zip(mine, plain):
        assert torch.equal(a, b)


def test_weight_bend_with_live_parameter(rave):
    before = state(rave)
    bent = tb.BendedModule(rave)
    z = torch.randn(1, 4, 8)
    gain = tb.BendingParameter("gain", 1.0)
    bent.bend(tb.Scale(gain), "decoder.6.conv.weight")
    bent.bend(tb.Scale(gain), "decoder.6.conv.bias")
    out1 = bent.decode(z)
    gain.value = 0.0
    out0 = bent.decode(z)
    assert torch.allclose(out0, torch.zeros_like(out0))  # tanh(0 * x + 0)
    assert not torch.allclose(out1, out0)
    assert torch.equal(rave.state_dict()["decoder.6.conv.weight"], before["decoder.6.conv.weight"])


def test_activation_bend_composes_and_reads_parameter_at_call_time(rave):
    bent = tb.BendedModule(rave)
    z = torch.randn(1, 4, 8)
    bent.trace("decode", z)
    last = bent.activation_names("decode")[-1]  # the tanh output
    offset = tb.BendingParameter("offset", 1.0)
    bent.bend(tb.Scale(2.0), f"decode:{last}")
    bent.bend(tb.Bias(offset), f"decode:{last}")
    plain = tb.BendedModule(rave).decode(z)
    assert torch.allclose(bent.decode(z), plain * 2 + 1)
    offset.value = -1.0
    bent2 = tb.BendedModule(rave)  # fresh caches for the same call
    bent2.trace("decode", z)
    bent2.bend(tb.Scale(2.0), f"decode:{last}")
    bent2.bend(tb.Bias(offset), f"decode:{last}")
    assert torch.allclose(bent2.decode(z), plain * 2 - 1)


def test_get_and_from_activations(rave):
    bent = tb.BendedModule(rave)
    x = torch.randn(1, 1, 32)
    bent.trace("forward", x)
    names = bent.activation_names("forward")
    latent = next(n for n in names if n.startswith("encoder.2:"))
    got = bent.get_activations(latent, x, fn="forward")
    assert got[latent].shape == (1, 4, 8)
    assert torch.equal(got[latent], rave.encode(x))
    both = bent.get_activations(names[1], latent, x, fn="forward")
    assert list(both) == [names[1], latent] and torch.equal(both[latent], got[latent])
    fresh = tb.BendedModule(rave)
    full = fresh.forward(x)
    other = tb.BendedModule(rave)
    other.trace("forward", x)
    other.bend(tb.Scale(1.0), "decoder.0.conv.weight")  # a bent weight is one more input of the graph
    again = other.from_activations(fn="forward", **{latent: got[latent]})
    assert again.shape == full.shape == (1, 1, 32)
    assert torch.equal(again, full)


def test_plain_sequential(tmp_path):
    torch.manual_seed(0)
    loaded = save_load(nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2)), tmp_path)
    bent = tb.BendedModule(loaded)
    x = torch.randn(2, 3)
    bent.trace("forward", x)
    names = bent.activation_names("forward")
    assert [n.split(":")[0] for n in names[1:]] == ["0", "1", "2"]
    bent.bend(tb.Scale(0.0), f"forward:{names[2]}")  # the ReLU output
    assert torch.allclose(bent.forward(x), loaded.state_dict()["2.bias"].expand(2, 2))


def test_control_flow_value_is_refused_with_node_and_method(tmp_path):
    loaded = save_load(Looping(), tmp_path)
    bent = tb.BendedModule(loaded)
    bent.trace("forward", torch.randn(2, 4))
    inner = list(bent.engine.record("forward").nested)
    assert inner
    with pytest.raises(BendingError, match=r"forward.*prim::(Loop|If)"):
        bent.bend(tb.Scale(2.0), f"forward:{inner[0]}")
    with pytest.raises(BendingError, match="forward"):
        bent.get_activations(inner[0], torch.randn(2, 4), fn="forward")
    lin = next(n for n in bent.activation_names("forward") if n.startswith("lin:"))
    bent.bend(tb.Scale(0.0), f"forward:{lin}")  # outside the blocks: fine
    zero_lin = torch.zeros(2, 4)
    for _ in range(2):
        zero_lin = torch.tanh(zero_lin) * 2
    assert torch.equal(bent.forward(torch.randn(2, 4)), zero_lin)  # tanh(0) = 0 and the sum is not > 0


def test_concurrent_calls_and_parameter_changes(rave):
    bent = tb.BendedModule(rave)
    gain = tb.BendingParameter("gain", 1.0)
    bent.bend(tb.Scale(gain), "encoder.0.weight")
    x = torch.randn(1, 1, 32)
    expected = {v: rave.encode(x) if v == 1.0 else None for v in (1.0,)}
    errors = []

    def worker() -> None:
        try:
            for _ in range(20):
                bent.encode(x)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for v in (0.5, 2.0, 1.0):
        gain.value = v
    for t in threads:
        t.join()
    assert not errors
    assert torch.equal(bent.encode(x), expected[1.0])


def test_script_round_trip_in_fresh_process(rave, tmp_path):
    bent = tb.BendedModule(rave)
    z = torch.randn(1, 4, 8)
    bent.trace("decode", z)
    gain = tb.BendingParameter("gain", 2.0, range=(0.0, 4.0))
    bent.bend(tb.Scale(gain), "decoder.0.conv.weight")
    last = bent.activation_names("decode")[-1]
    bent.bend(tb.Affine(scale=gain, bias=0.5), f"decode:{last}")
    expected = bent.decode(z)
    before = state(rave)
    scripted = bent.script()
    path = tmp_path / "bent.ts"
    torch.jit.save(scripted, str(path))
    torch.save(z, tmp_path / "z.pt")
    gain.value = 1.0
    reference = tb.BendedModule(rave)
    reference.trace("decode", z)
    reference.bend(tb.Scale(gain), "decoder.0.conv.weight")
    reference.bend(tb.Affine(scale=gain, bias=0.5), f"decode:{last}")
    expected_at_1 = reference.decode(z)
    code = (
        f"import torch; m = torch.jit.load({str(path)!r}); z = torch.load({str(tmp_path / 'z.pt')!r}); "
        f"a = m.decode(z); torch.save(a, {str(tmp_path / 'a.pt')!r}); m2 = torch.jit.load({str(path)!r}); "
        f"assert m2.get_gain() == 2.0; m2.set_gain(1.0); torch.save(m2.decode(z), {str(tmp_path / 'b.pt')!r}); "
        "import sys; sys.exit(0 if 'torchbend' not in sys.modules else 3)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert torch.allclose(torch.load(tmp_path / "a.pt"), expected, atol=1e-6)
    assert torch.allclose(torch.load(tmp_path / "b.pt"), expected_at_1, atol=1e-6)
    with pytest.raises(torch.jit.Error, match="above"):
        scripted.set_gain(5.0)
    for name, value in state(rave).items():
        assert torch.equal(value, before[name])


def test_nntilde_export_keeps_methods_and_adds_attributes(tmp_path):
    nn_tilde = pytest.importorskip("nn_tilde")

    class Tilde(nn_tilde.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = make_streaming_model()

        @torch.jit.export
        def decode(self, z: torch.Tensor) -> torch.Tensor:
            return self.model.decode(z)

    module = Tilde()
    module.register_method("decode", in_channels=4, in_ratio=4, out_channels=1, out_ratio=1)
    loaded = save_load(module, tmp_path)
    bent = tb.BendedModule(loaded)
    z = torch.randn(1, 4, 8)
    bent.trace("decode", z)
    bent.bend(tb.Scale(tb.BendingParameter("drive", 3.0, range=(0.0, 8.0))), "model.decoder.0.conv.weight")
    expected = bent.decode(z)
    path = bent.export_nntilde(tmp_path / "bent.ts")
    code = (
        f"import torch; m = torch.jit.load({str(path)!r}); "
        "print(m.get_methods(), m.get_attributes(), m.get_drive(), m.decode_params.tolist(), "
        "m.drive_params.tolist()); "
        f"torch.save(m.decode(torch.load({str(tmp_path / 'z.pt')!r})), {str(tmp_path / 'y.pt')!r})"
    )
    torch.save(z, tmp_path / "z.pt")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["['decode']", "['none',", "'drive']", "3.0", "[4,", "4,", "1,", "1]", "[2.0]"]
    assert torch.allclose(torch.load(tmp_path / "y.pt"), expected, atol=1e-6)


def test_export_refuses_a_plain_module_for_nntilde(rave, tmp_path):
    bent = tb.BendedModule(rave)
    with pytest.raises(BendingError, match="nn~ module"):
        bent.export_nntilde(tmp_path / "x.ts")


def test_unknown_names_list_the_closest(rave):
    bent = tb.BendedModule(rave)
    with pytest.raises(tb.UnknownNameError, match="decoder.0.conv.weight"):
        bent.bend(tb.Scale(2.0), "decoder.0.conv.weigth")
    bent.trace("decode", torch.randn(1, 4, 8))
    with pytest.raises(tb.UnknownNameError, match="decode"):
        bent.bend(tb.Scale(2.0), "decode:decoder.2:input")


def test_reading_a_value_written_in_place_is_refused(tmp_path):
    loaded = save_load(InPlace(), tmp_path)
    bent = tb.BendedModule(loaded)
    x = torch.randn(2, 4)
    bent.trace("forward", x)
    lin = next(n for n in bent.activation_names("forward") if n.startswith("lin:"))
    with pytest.raises(BendingError, match=r"aten::add_.*forward|forward.*aten::add_"):
        bent.get_activations(lin, x, fn="forward")
    bent.bend(tb.Scale(0.0), f"forward:{lin}")
    assert torch.equal(bent.forward(x), torch.full((2, 4), 2.0))
    bent.reset()
    assert torch.equal(bent.forward(x), loaded(x))


def test_bended_module_and_load_give_the_bending_api_on_a_file(rave, tmp_path):
    path = tmp_path / "saved.ts"
    torch.jit.save(rave, str(path))
    loaded = tb.load(path)
    assert type(loaded) is tb.BendedModule and type(tb.BendedModule(rave)) is tb.BendedModule
    before = state(loaded.module)
    z = torch.randn(1, 4, 8)
    plain = torch.jit.load(str(path)).decode(z)
    loaded.trace("decode", z)
    assert "decoder.2.weight" in loaded.weight_names and loaded.traced_methods == ["decode"]
    gain = tb.BendingParameter("gain", 1.0)
    weights = loaded.bend(tb.Scale(gain), r"decoder\.6\.conv\.(weight|bias)")
    assert weights.weights == ["decoder.6.conv.weight", "decoder.6.conv.bias"] and not weights.activations("decode")
    last = loaded.activation_names("decode")[-1]
    with loaded.bend(tb.Bias(0.5), f"decode:{last}") as act:
        assert act.activations("decode") == [last] and not act.weights
        loaded.update("gain", 0.0)
        assert torch.allclose(loaded.decode(z), torch.full_like(plain, 0.5))  # tanh(0) + 0.5
    assert torch.allclose(loaded.decode(z), torch.zeros_like(plain))  # the value bend is gone
    weights.remove()
    assert loaded.controllables == {}
    for name, value in state(loaded.module).items():
        assert torch.equal(value, before[name]), name
    fresh = tb.load(path)
    shared = tb.Scale(3.0)
    fresh.bend(shared, "decoder.2.weight").remove()
    kept = fresh.bend(shared, "decoder.6.conv.bias")
    fresh.bend(shared, "decoder.2.bias").remove()  # the same callback in another bend: that one stays
    assert [name for b in fresh.bends for name in b.weights] == ["decoder.6.conv.bias"]
    kept.remove()
    assert torch.equal(fresh.decode(z), plain)  # both first calls, from empty caches
    with pytest.raises(tb.UnknownNameError, match="closest"):
        loaded.bend(tb.Scale(2.0), "decoder.6.conv.weigth")
    with pytest.raises(tb.UnknownNameError, match="gian"):
        loaded.update("gian", 1.0)
    with pytest.raises(tb.UnknownNameError, match="gain"):  # no bend reads it any more
        loaded.decode(z, per_example={"gain": [1.0]})
    (tmp_path / "notes.pt").write_text("not a model")
    with pytest.raises(tb.BendingError, match="not a TorchScript file"):
        tb.load(tmp_path / "notes.pt")
    with pytest.raises(tb.BendingError, match="reads files ending in"):
        tb.load(tmp_path / "model.onnx")


class Maps(nn.Module):
    """A stateless 2-D model: every callback family applies to its feature maps."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.out = nn.Conv2d(6, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.conv(x)))


@pytest.fixture
def maps(tmp_path) -> torch.jit.ScriptModule:
    return save_load(Maps(), tmp_path, "maps.ts")


def _without_script(callback: tb.BendingCallback) -> tb.BendingCallback:
    def refuse(*args):
        raise NotImplementedError("no TorchScript form")

    for module in callback.modules():
        module.script = refuse
    return callback


CALLBACKS = {
    "Scale": lambda p: tb.Scale(p(1.5)),
    "Affine": lambda p: tb.Affine(scale=p(0.5), bias=0.2),
    "Mask": lambda p: tb.Mask(p(0.4), seed=1),
    "OrderedMask": lambda p: tb.OrderedMask(p(0.4), seed=1),
    "Normal": lambda p: tb.Normal(p(0.3), seed=2),
    "Permute": lambda p: tb.Permute(1, seed=3),
    "Clamp": lambda p: tb.Clamp(p(-0.1), 0.2),
    "Quantize": lambda p: tb.Quantize(p(4)),
    "Rotate": lambda p: tb.Rotate(p(30.0)),
    "Erode": lambda p: tb.Erode(p(3)),
    "Blur": lambda p: tb.Blur(p(1.0)),
    "Select": lambda p: tb.Select(tb.Scale(p(0.0)), [0, 2]),
    "Threshold": lambda p: tb.ThresholdActivation(p(0.5)),
}


@pytest.mark.parametrize("name", list(CALLBACKS))
def test_eager_bends_run_compiled_in_the_graph_as_their_python_forms_do(maps, name):
    outputs = []
    for python in (False, True):
        bended = tb.BendedModule(maps)
        bended.trace("forward", torch.randn(2, 3, 8, 8))
        callback = CALLBACKS[name](lambda v: tb.BendingParameter("p", v))
        bended.bend(_without_script(callback) if python else callback, "forward:relu")
        x = torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(0))  # another batch than traced
        outputs.append(bended(x))
        runner = bended.engine.snapshot().runner("forward")
        assert len(runner._variant.steps) == (1 if python else 0)  # Python calls only without a script form
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=1e-5)


def test_a_compiled_bend_reads_its_live_parameter_at_each_call_without_recompiling(maps):
    bended = tb.BendedModule(maps)
    x = torch.randn(2, 3, 8, 8)
    bended.trace("forward", x)
    gain = tb.BendingParameter("gain", 0.0)
    bended.bend(tb.Scale(gain), "conv:conv2d")
    assert torch.equal(bended(x), maps.out.bias.detach().view(1, 2, 1, 1).expand(2, 2, 8, 8))
    program = bended.engine.snapshot().program("forward")
    gain.value = 1.0
    torch.testing.assert_close(bended(x), maps(x))
    assert bended.engine.snapshot().program("forward") is program


def test_bends_with_run_time_inputs_run_as_python_calls(maps):
    bended = tb.BendedModule(maps)
    x = torch.randn(4, 3, 8, 8)
    bended.trace("forward", x)
    first = bended.get_activations("relu", x[:1], fn="forward")["relu"]
    bended.bend(tb.InterpolateActivation(), "forward:relu")
    weights = torch.zeros(4, 4)
    weights[:, 0] = 1.0  # every item takes the first item's activation
    out = bended(x, interp_weights=weights)
    assert len(bended.engine.snapshot().runner("forward")._variant.steps) == 1
    torch.testing.assert_close(out, bended.from_activations(fn="forward", relu=first.expand(4, -1, -1, -1)))


def save_path(module: torch.jit.ScriptModule, tmp_path, name: str = "saved.ts"):
    path = tmp_path / name
    torch.jit.save(module, str(path))
    return path


def test_a_torchscript_model_through_the_python_api(maps, tmp_path):
    """Per-example values, weight versions, tables, a config round trip, scoped names and exports, as for Python."""
    before = state(maps)
    bended = tb.load(save_path(maps, tmp_path))
    assert isinstance(bended, tb.BendedModule) and isinstance(tb.BendedModule(maps), tb.BendedModule)
    x = torch.randn(3, 3, 8, 8)
    bended.trace("forward", x)
    assert bended.resolve_activations(".*@out") == ["out:conv2d"]  # scoped by the module computing the value
    assert bended.resolve_activations("forward:conv:.*") == ["conv:conv2d"]
    assert [t.qualified for t in bended.engine.resolve_targets(["conv:conv2d", "forward:relu"])] == [
        "forward:conv:conv2d",
        "forward:relu",
    ]
    # per-example values: an activation's (one call) and a weight's (one call per group)
    gain, w = tb.BendingParameter("gain", 1.0), tb.BendingParameter("w", 1.0)
    act = bended.bend(tb.Scale(gain), "conv:conv2d")
    weight = bended.bend(tb.Scale(w), "out.weight")
    values = {"gain": [0.0, 1.0, 2.0], "w": [1.0, 0.5, 1.0]}
    out = bended(x, per_example=values)
    for i in range(3):
        gain.value, w.value = values["gain"][i], values["w"][i]
        torch.testing.assert_close(out[i : i + 1], bended(x[i : i + 1]), atol=1e-6, rtol=1e-6)
    act.remove()
    weight.remove()
    # weight versions and interpolation
    tuned = {name: 3 * t for name, t in maps.state_dict().items() if name.startswith("out.")}
    assert bended.create_version("tuned", tuned, strict=False) == ["conv.weight", "conv.bias"]
    plain = maps(x)
    with bended.set_version("tuned"):
        torch.testing.assert_close(bended(x), 3 * plain, atol=1e-5, rtol=1e-5)
        assert bended.version == "tuned"
    with bended.interpolate(original=0.5, tuned=0.5):
        torch.testing.assert_close(bended(x), 2 * plain, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bended(x), plain)
    # tables
    assert [row[0] for row in bended.weights_table().rows] == [n for n, _ in maps.named_parameters()]
    assert "conv/" in str(bended.activations_table("forward")) and bended.trace_report().rows[0][1] == "torchscript"
    # a config saved, then loaded on a freshly loaded file, bends the same
    keep = tb.BendingParameter("keep", 0.5, range=(0.0, 1.0))
    bended.bend(tb.Mask(keep, seed=0), "conv.weight")
    bended.bend(tb.Affine(scale=keep, bias=0.1), "forward:relu")
    expected = bended(x)
    bended.bending_config().save(tmp_path / "bends.json")
    other = tb.load(save_path(maps, tmp_path, "again.ts"))
    other.trace("forward", x)
    other.bend(tb.BendingConfig.load(tmp_path / "bends.json"))
    assert list(other.controllables) == ["keep"]
    torch.testing.assert_close(other(x), expected)
    # the export bakes the same; weights written into a version
    torch.testing.assert_close(bended.script().forward(x), expected, atol=1e-6, rtol=1e-6)
    with pytest.raises(tb.ExportError, match="torch.export needs a Python module"):
        bended.export(str(tmp_path / "x.pt2"), "forward", x)
    assert bended.write("baked") == "baked" and [b.weights for b in bended.bends] == [[]]
    torch.testing.assert_close(bended(x), expected)
    for name, value in state(maps).items():
        assert torch.equal(value, before[name]), name


def test_bent_script_module_is_a_deprecated_alias_keeping_its_calls(rave):
    with pytest.warns(DeprecationWarning, match="tb.BendedModule"):
        bent = tb.BentScriptModule(rave)
    assert isinstance(bent, tb.BendedModule)
    x = torch.randn(1, 1, 32)
    bent.trace("forward", x)
    latent = next(n for n in bent.activation_names("forward") if n.startswith("encoder.2:"))
    bent.bend_weight("decoder.0.conv.weight", tb.Scale(1.0))
    bent.bend_activation("forward", latent, tb.Scale(1.0))
    got = bent.get_activations([latent], x, fn="forward")
    assert torch.equal(got[latent], rave.encode(x))
    assert bent.from_activations("forward", **got).shape == (1, 1, 32)


def test_from_activations_skips_the_state_writes_of_the_layers_it_cuts(rave):
    """On a streaming model, feeding a value in the middle of decode needs no latent: the cached convolutions
    before the cut neither run nor advance; those after it do, as in a whole call."""
    z = torch.randn(1, 4, 8)
    whole, cut, reader = (tb.BendedModule(rave) for _ in range(3))
    for bended in (whole, cut, reader):
        bended.trace("decode", z)
    acts = reader.get_activations("decoder.2:input2.1", z, fn="decode")
    out = cut.from_activations(fn="decode", **acts)
    torch.testing.assert_close(out, whole.decode(z))
    own = cut.engine.backend.own.decoder
    assert torch.equal(getattr(own, "0").cache, torch.zeros(1, 4, 2))  # before the cut: not run
    assert not torch.equal(getattr(own, "4").cache, torch.zeros(1, 8, 2))  # after it: advanced


def test_each_call_runs_on_one_snapshot_while_parameters_change(maps):
    """A live parameter read by a weight bend and by a compiled activation bend: every output is one of the
    outputs of a single value, never a mix."""
    bended = tb.BendedModule(maps)
    x = torch.randn(2, 3, 8, 8)
    bended.trace("forward", x)
    gain = tb.BendingParameter("gain", 1.0)
    bended.bend(tb.Scale(gain), "conv.weight", "forward:relu")
    valid = []
    for value in (0.5, 1.0, 2.0):
        gain.value = value
        valid.append(bended(x))
    seen, errors = [], []

    def worker() -> None:
        try:
            for _ in range(30):
                seen.append(bended(x))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(60):
        gain.value = (0.5, 1.0, 2.0)[i % 3]
    for t in threads:
        t.join()
    assert not errors and len(seen) == 90
    assert all(any(torch.equal(out, v) for v in valid) for out in seen)


def test_to_moves_the_private_copy_and_the_bends(maps):
    bended = tb.BendedModule(maps)
    x = torch.randn(2, 3, 8, 8)
    bended.trace("forward", x)
    bended.bend(tb.Scale(2.0), "out.weight")
    bended.bend(tb.Bias(1.0), "forward:relu")
    expected = bended(x)
    assert bended.to(torch.float64) is bended
    out = bended(x.double())
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, expected.double(), atol=1e-5, rtol=1e-5)


def test_uninitialized_placeholders_are_not_values(tmp_path):
    loaded = save_load(Rates(), tmp_path)
    bended = tb.BendedModule(loaded)
    x = torch.randn(2, 4)
    bended.trace("forward", x, 8000)
    assert bended.activation_names() == ["x.1", "y0.1", "lin:linear"]  # y0.1: x * 2, the branch sr=8000 takes
    bended.bend(tb.Scale(0.0), "forward:lin:linear")
    assert torch.equal(bended(x, 8000), torch.zeros(2, 4))


class Switch(nn.Module):
    """Branches on an int argument, on a configuration attribute, and on state a method writes."""

    def __init__(self, streaming: bool = True) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.streaming = streaming
        self.calls = 0

    def forward(self, x: torch.Tensor, mode: int = 0) -> torch.Tensor:
        h = self.lin(x)
        if mode == 1:
            h = torch.relu(h) * 3.0
        else:
            h = torch.tanh(h)
        if self.streaming:
            h = h + 1.0
        if self.calls > 1:  # state: written below, so never folded
            h = h * 0.5
        self.calls += 1
        return h


def test_branches_on_arguments_and_attributes_are_taken_and_guarded(tmp_path):
    loaded = save_load(Switch(), tmp_path)
    plain = torch.jit.load(str(tmp_path / "model.ts"))
    bended = tb.BendedModule(loaded)
    x = torch.randn(2, 4)
    bended.trace("forward", x, 1)
    names = bended.activation_names()
    assert names[:5] == ["x.1", "lin:h.1", "relu", "h0.1", "h1.1"]  # the mode == 1 and streaming branches
    record = bended.engine.record("forward")
    assert record.baked == {"mode": 1} and record.folded == {"streaming": True}
    assert any(v.startswith("h2") for v in record.nested)  # `self.calls > 1` stays a branch
    for _ in range(3):  # the state branch still runs as the module's own code does
        assert torch.equal(bended(x, 1), plain(x, 1))
    bended.bend(tb.Scale(0.0), "forward:relu")
    assert torch.equal(bended(x, 1), torch.full((2, 4), 0.5))  # (0 * 3 + 1) * 0.5 from the third call on
    values = bended.get_activations("h0.1", x, mode=1)
    assert torch.equal(values["h0.1"], torch.zeros(2, 4))
    with pytest.raises(tb.SpecializationError, match=r"mode=1, this call gives 0"):
        bended(x, 0)
    with pytest.raises(tb.SpecializationError, match="mode=1"):
        bended.get_activations("h0.1", x, mode=0)
    with pytest.raises(tb.SpecializationError, match="mode=1"):
        bended.from_activations(mode=0, **{"h0.1": torch.zeros(2, 4)})
    scripted = bended.script()
    assert torch.equal(scripted(x, 1), torch.ones(2, 4))  # a copy of the loaded file's state: its first call
    with pytest.raises(torch.jit.Error, match="specialised to mode=1"):
        scripted(x, 0)


def test_retrace_takes_the_other_branch(tmp_path):
    loaded = save_load(Switch(streaming=False), tmp_path)
    plain = torch.jit.load(str(tmp_path / "model.ts"))
    bended = tb.BendedModule(loaded)
    x = torch.randn(2, 4)
    bended.trace("forward", x, 1, retrace=True)
    bended.bend(tb.Scale(1.0), "lin.weight")
    assert torch.equal(bended(x, 0), plain(x, 0))
    record = bended.engine.record("forward")
    ops = {info.op for info in record.activations.values()}
    assert record.baked == {"mode": 0} and "aten::tanh" in ops and "aten::relu" not in ops
    assert bended.engine.retraces["forward"] == 1


class EarlyReturn(nn.Module):
    """A ``return`` inside a loop: the loop carries a value TorchScript leaves uninitialized until it is set."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, n: int = 3) -> torch.Tensor:
        h = self.lin(x)
        for i in range(x.shape[0]):
            if i == n:
                return h * 2.0
        return h + 1.0


def test_values_a_path_leaves_unset_never_reach_a_python_call(tmp_path):
    loaded = save_load(EarlyReturn(), tmp_path)
    bended = tb.BendedModule(loaded)
    x = torch.randn(2, 4)
    bended.trace("forward", x)  # the loop's count is x's length: the loop stays, its carried value unset
    record = bended.engine.record("forward")
    assert "Loop" in record.unset and "Loop" not in bended.activation_names()  # the value the loop carries
    with pytest.raises(BendingError, match="prim::Loop leaves it unset"):
        bended.bend(tb.Scale(0.0), "forward:Loop")
    bended.bend(tb.Scale(0.0), "forward:lin:h.1")
    assert torch.equal(bended(x), torch.ones(2, 4))


def test_a_loop_counted_by_an_int_argument_is_unrolled(tmp_path):
    loaded = save_load(Looping(), tmp_path)
    bended = tb.BendedModule(loaded)
    x = torch.randn(2, 4)
    bended.trace("forward", x, 3)
    record = bended.engine.record("forward")
    tanhs = [n for n, info in record.activations.items() if info.op == "aten::tanh"]
    assert len(tanhs) == 3  # one per turn, each a value of its own
    bended.bend(tb.Scale(0.0), f"forward:{tanhs[1]}")
    h = torch.zeros(2, 4)  # the second turn zeroed, the third: tanh(0) * 2 = 0; then not > 0
    assert torch.equal(bended(x, 3), h)
    with pytest.raises(tb.SpecializationError, match="n=3"):
        bended(x, 2)


class Stateful(nn.Module):
    """An optional state: ``if state is None`` decides on the argument's presence, not on a tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, state: Optional[torch.Tensor] = None) -> torch.Tensor:  # noqa: UP045
        h = self.lin(x)
        if state is None:
            h = torch.tanh(h)
        else:
            h = h + state
        return h


def test_an_optional_argument_given_a_value_folds_its_none_tests(tmp_path):
    loaded = save_load(Stateful(), tmp_path)
    bended = tb.BendedModule(loaded)
    x, state = torch.randn(2, 4), torch.randn(2, 4)
    bended.trace("forward", x, state)
    record = bended.engine.record("forward")
    added = next(n for n, info in record.activations.items() if info.op == "aten::add")  # the taken branch
    assert record.given == ["state"] and not record.baked and not record.nested
    bended.bend(tb.Scale(0.0), f"forward:{added}")
    assert torch.equal(bended(x, torch.ones(2, 4)), torch.zeros(2, 4))  # another tensor: the same branch
    with pytest.raises(tb.SpecializationError, match="value for state, this call gives None"):
        bended(x)
    with pytest.raises(tb.SpecializationError, match="state"):
        bended.from_activations(**{"lin:h.1": torch.zeros(2, 4)})
    scripted = bended.script()
    assert torch.equal(scripted(x, state), torch.zeros(2, 4))
    with pytest.raises(torch.jit.Error, match="specialised to state=not None"):
        scripted(x)
