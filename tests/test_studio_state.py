import json
import os
import re
import threading

import pytest
import torch

import torchbend as tb
from conftest import assert_unchanged, run_bounded, state_snapshot
from torchbend.apps.studio import StudioState
from torchbend.apps.studio.render import Renderer
from torchbend.apps.studio.views import output_view


@pytest.fixture
def state(vae, z, tmp_path):
    state = StudioState(tb.BendedModule(vae), "decode", {"z": z}, out_dir=tmp_path)
    yield state
    state.close()


def test_lists_activations_and_weights_with_shapes_grouped_by_submodule(state, vae):
    rows = {r["name"]: r for r in state.search()}
    assert rows["decoder_net_convt0"] == {
        "name": "decoder_net_convt0",
        "kind": "activation",
        "group": "decoder.net",
        "shape": "16×4×14×14",
        "size": 16 * 4 * 14 * 14,
    }
    assert rows["decoder.net.convt1.weight"]["kind"] == "weight"
    assert rows["decoder.net.convt1.weight"]["group"] == "decoder.net"
    assert rows["decoder.net.convt1.weight"]["shape"] == "4×1×4×4"
    assert {n for n, r in rows.items() if r["kind"] == "weight"} == {n for n, _ in vae.named_parameters()}
    found = [r["name"] for r in state.search("convt1 weight")]  # "weight" is also a kind
    assert found == ["decoder.net.convt1.weight", "decoder.net.convt1.bias"]
    assert state.matches(r"decoder_net_convt\d") == ["decoder_net_convt0", "decoder_net_convt1"]
    assert state.matches("nothing_like_this") == []


def test_callback_form_fields_come_from_the_signature(state):
    assert {"Mask", "Scale", "Affine", "Lambda", "ThresholdActivation"} <= set(state.callbacks())
    fields = {f.name: f for f in state.fields("ThresholdActivation")}
    assert (fields["threshold"].kind, fields["threshold"].default, fields["threshold"].live) == ("float", 0.5, True)
    assert (fields["dim"].kind, fields["dim"].live) == ("int", False)
    assert fields["invert"].kind == "bool"
    assert state.fields("Lambda")[0].kind == "function" and state.fields("Lambda")[0].required
    with pytest.raises(ValueError, match="registered: .*Affine"):
        state.fields("Nope")


def test_a_registered_user_callback_is_offered(state):
    @tb.register_callback
    class StudioClip(tb.BendingCallback):
        def __init__(self, limit: float = 1.0) -> None:
            super().__init__()
            self.limit = limit

        def forward(self, x, state):
            return x.clamp(-self.limit, self.limit)

    assert "StudioClip" in state.callbacks()
    entry = state.add_bend("StudioClip", "decoder_fc", {"limit": 0.01})
    assert entry.enabled and entry.targets == ["decode:decoder_fc"]


def test_add_bend_move_a_parameter_toggle_and_remove(state, vae):
    snapshot = state_snapshot(vae)
    plain = state.wait().output.png
    assert plain == state.plain_view().png
    entry = state.add_bend("Mask", "decoder_net_convt0", {"seed": 0}, {"prob": (0.0, 1.0)})
    assert list(state.parameters) == ["mask_prob"] and state.parameters["mask_prob"].value == 0.3
    bent = state.wait().output.png
    assert bent != plain
    assert state.set_parameter("mask_prob", 2.0) == 1.0  # clamped to the slider's range
    state.set_parameter("mask_prob", 0.7)
    moved = state.wait().output.png
    assert moved not in (plain, bent)
    state.set_enabled(0, False)
    assert not entry.enabled and state.bended.bends == []
    assert state.wait().output.png == plain
    state.set_enabled(0, True)
    assert state.wait().output.png == moved
    state.remove_bend(0)
    assert state.entries == [] and state.wait().output.png == plain
    assert_unchanged(vae, snapshot)


def test_toggling_keeps_the_order_bends_compose_in(state, z):
    state.add_bend("Bias", "decoder_fc", {"bias": 1.0})
    state.add_bend("Scale", "decoder_fc", {"scale": 0.0})  # after the bias: zeroes it
    before = state.bended.decode(z=z)
    state.set_enabled(0, False)
    state.set_enabled(0, True)
    torch.testing.assert_close(state.bended.decode(z=z), before)
    assert [type(b.callback).__name__ for b in state.bended.bends] == ["Bias", "Scale"]


def test_bad_bends_name_the_problem_and_leave_nothing(state):
    with pytest.raises(ValueError, match="takes no argument 'probability'"):
        state.add_bend("Mask", "decoder_fc", {"probability": 0.2})
    with pytest.raises(ValueError, match="cannot be live"):
        state.add_bend("Mask", "decoder_fc", live={"seed": (0, 10)})
    with pytest.raises(ValueError, match="not a Python literal"):
        state.add_bend("Mask", "decoder_fc", {"dim": "(1,"})
    with pytest.raises(tb.UnknownNameError):
        state.add_bend("Mask", "decoder_fcc")
    assert state.entries == [] and state.bended.bends == []


def test_save_and_load_a_config(state, vae, z, tmp_path):
    state.add_bend("Mask", "decoder_net_convt0", {"seed": 3}, {"prob": (0.0, 1.0)})
    state.set_parameter("mask_prob", 0.6)
    expected = state.bended.decode(z=z)
    path = state.save_config("bends.json")
    assert path == tmp_path / "bends.json"
    other = StudioState(tb.BendedModule(vae), "decode", {"z": z}, out_dir=tmp_path)
    try:
        added = other.load_config("bends.json")
        assert [e.label for e in added] == ["Mask on decode:decoder_net_convt0"]
        assert other.parameters["mask_prob"].value == 0.6
        torch.testing.assert_close(other.bended.decode(z=z), expected)
    finally:
        other.close()


def test_config_names_stay_inside_out_dir(state, tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-outside.json"
    (tmp_path / "link.json").symlink_to(outside)
    folder = re.escape(str(tmp_path.resolve()))
    for name in [str(outside), "../escape.json", "sub/bends.json", "", ".", "..", "link.json", "a\\b.json"]:
        with pytest.raises(ValueError, match=f"is not a file name in {folder}"):
            state.save_config(name)
        with pytest.raises(ValueError, match=f"is not a file name in {folder}"):
            state.load_config(name)
    assert not outside.exists() and not (tmp_path.parent / "escape.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json"]  # no folder made, not even by a load


def test_saving_replaces_a_file_only_when_asked(state, tmp_path):
    state.add_bend("Scale", "decoder_fc", {"scale": 2.0})
    path = state.save_config("bends.json")
    path.write_text("mine")
    with pytest.raises(FileExistsError, match="bends.json exists; tick 'overwrite'"):
        state.save_config("bends.json")
    assert path.read_text() == "mine"
    assert state.save_config("bends.json", overwrite=True) == path
    assert len(tb.BendingConfig.load(path)) == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_loading_reads_regular_files_only(state, tmp_path):
    pipe = tmp_path / "pipe.json"
    os.mkfifo(pipe)
    outcome = []

    def load():
        try:
            state.load_config("pipe.json")
        except Exception as error:
            outcome.append(str(error))

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(20)  # opening a pipe blocks in the kernel, without the GIL: the timeout works
    if thread.is_alive():
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))  # let the blocked reader go
        pytest.fail("load_config blocked on a named pipe")
    assert outcome == [f"{pipe} is not a regular file"]
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(ValueError, match="folder.json is not a regular file"):
        state.load_config("folder.json")
    with pytest.raises(tb.ConfigError, match=f"no file 'missing.json' in {re.escape(str(tmp_path.resolve()))}"):
        state.load_config("missing.json")


# the page's text, matched in another interpreter: a regex freezing it holds the GIL, so no thread here could stop it
PAGE_PATTERNS = """
import collections, json, sys, torch
import torchbend as tb
from torchbend.apps.studio import StudioState
model = torch.nn.Sequential(collections.OrderedDict(a_layer_with_a_rather_long_name=torch.nn.Linear(4, 4)))
state = StudioState(tb.BendedModule(model), "forward", {"input": torch.zeros(1, 4)})
for pattern in json.loads(sys.argv[1]):
    for action in (lambda: state.matches(pattern), lambda: state.add_bend("Scale", pattern).label):
        try:
            print(action())
        except tb.BendingError as error:
            print(type(error).__name__, "google-re2" in str(error))
state.close()
"""


def test_freezing_patterns_typed_in_the_studio_are_matched_in_bounded_time():
    freezing = ["(.|.)*!", "((.+))+!", ".*" * 30 + "!"]
    lines = run_bounded(PAGE_PATTERNS, json.dumps(freezing + ["a_layer_.*weight"]))
    assert len(lines) == 8
    # google-re2 matches them (in linear time) and finds nothing; without it they are refused, naming it
    assert all(line in ("[]", "UnknownNameError False", "BendingError True") for line in lines[:6]), lines
    assert lines[6:] == [
        "['a_layer_with_a_rather_long_name.weight']",
        "Scale on a_layer_with_a_rather_long_name.weight",
    ]


def test_export_torchscript_writes_a_loadable_file(state, z):
    state.add_bend("Scale", "decoder.net.convt1.weight", {"scale": 0.5}, {"scale": (0.0, 2.0)})
    path = state.export_script("bent.ts")
    scripted = torch.jit.load(str(path))
    torch.testing.assert_close(scripted.decode(z), state.bended.decode(z=z))


def test_osc_from_the_studio_renders(state):
    from pythonosc.udp_client import SimpleUDPClient

    state.add_bend("Scale", "decoder_fc", {"scale": 1.0}, {"scale": (0.0, 2.0)})
    first = state.wait()
    server = state.start_osc(port=0)
    assert f":{server.port}" in state.control_lines()[0]
    SimpleUDPClient("127.0.0.1", server.port).send_message("/torchbend/scale_scale", 0.0)
    deadline = first.version
    while state.renderer.latest.version == deadline or state.parameters["scale_scale"].value != 0.0:
        state.renderer.wait(state.renderer.latest.version + 1, timeout=10)
    assert state.wait().output.png != first.output.png
    state.stop_control("osc")
    assert state.control_lines() == [] and not server.running


def test_renderer_coalesces_requests_made_during_a_render():
    gate, started = threading.Event(), threading.Event()
    value = {"x": 0}

    def render():
        started.set()
        gate.wait(10)
        return value["x"]

    renderer = Renderer(render)
    try:
        renderer.request()
        started.wait(10)
        for i in range(1, 50):  # 49 changes while the first render is busy
            value["x"] = i
            last = renderer.request()
        gate.set()
        result = renderer.wait(last)
        assert result.output == 49
        assert renderer.renders == 2  # the busy one, then one for all 49 changes
    finally:
        renderer.stop()


def test_output_views_by_kind():
    image = output_view(torch.rand(4, 1, 8, 8))
    assert image.kind == "image" and image.png.startswith(b"\x89PNG")
    audio = output_view(torch.sin(torch.linspace(0, 100, 2048)).view(1, 1, -1), sample_rate=8000)
    assert audio.kind == "audio" and audio.wav.startswith(b"RIFF") and audio.png.startswith(b"\x89PNG")
    tokens = output_view(torch.tensor([[1, 2, 3]]), decode_tokens=lambda ids: "-".join(map(str, ids)))
    assert (tokens.kind, tokens.text) == ("text", "1-2-3")
    other = output_view((torch.zeros(2, 5),))
    assert other.kind == "summary" and "shape (2, 5)" in other.text and "mean 0" in other.text


def test_a_session_on_a_torchscript_file(tmp_path):
    from torchbend.zoo import make_streaming_model

    path = tmp_path / "model.ts"
    torch.jit.save(torch.jit.script(make_streaming_model()), str(path))
    z = torch.randn(1, 4, 8)
    state = StudioState(tb.load(path), "decode", {"z": z}, out_dir=tmp_path)
    try:
        rows = {r["name"]: r for r in state.search()}
        assert rows["decoder.2:input2.1"]["group"] == "decoder" and rows["decoder.2:input2.1"]["shape"] == "1×8×32"
        assert rows["decoder.2.weight"]["group"] == "decoder"
        plain = state.wait().output
        state.add_bend("Scale", r"decoder\.6\.conv\..*", {"scale": 1.0}, {"scale": (0.0, 2.0)})
        state.add_bend("Bias", "decoder.7:tanh", {"bias": 0.5})
        assert [e.targets for e in state.entries] == [
            ["decoder.6.conv.weight", "decoder.6.conv.bias"],
            ["decode:decoder.7:tanh"],
        ]
        state.set_parameter("scale_scale", 0.0)
        stats = state.wait().output.stats
        assert stats["shape"] == (1, 1, 32) and stats["min"] == stats["max"] == pytest.approx(0.5)  # tanh(0) + 0.5
        state.save_config("bends.json")
        other = StudioState(tb.load(path), "decode", {"z": z}, out_dir=tmp_path)
        try:
            other.load_config("bends.json")
            assert other.parameters["scale_scale"].value == 0.0
            assert other.wait().output.stats["max"] == pytest.approx(0.5)
        finally:
            other.close()
        scripted = torch.jit.load(str(state.export_script("bent.ts")))
        assert torch.allclose(scripted.decode(z), torch.full((1, 1, 32), 0.5)) and scripted.get_scale_scale() == 0.0
        state.remove_bend(1)
        state.remove_bend(0)
        assert state.bended.bends == [] and state.wait().output.stats["std"] > 0  # caches advance: not the first
        assert plain.stats["std"] > 0
    finally:
        state.close()
