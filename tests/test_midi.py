import pytest
import torch
from torch import nn

import torchbend as tb
from torchbend.extras import MissingExtraError

mido = pytest.importorskip("mido")


def cc(control, value, channel=0):
    return mido.Message("control_change", control=control, value=value, channel=channel)


@pytest.fixture
def bended():
    bended = tb.BendedModule(nn.Sequential(nn.Linear(3, 2)))
    bended.trace("forward", torch.zeros(1, 3))
    bended.bend(
        tb.Affine(scale=tb.BendingParameter("gain", 1.0, range=(-1.0, 3.0)), bias=tb.BendingParameter("offset", 0.0)),
        "0.weight",
    )
    bended.bend(tb.Mask(tb.BendingParameter("steps", 2, range=(0, 10)) / 10, seed=0), "0.bias")
    bended.bend(tb.ThresholdActivation(0.5, invert=tb.BendingParameter("flip", False), dim=-1), "_0")
    return bended


def test_cc_values_scale_to_each_range(bended):
    mapping = tb.control.midi(bended, {1: "gain", 2: "steps", 3: "flip", 4: ("offset", -2.0, 2.0)})
    params = bended.controllables
    assert mapping.handle(cc(1, 127)) and params["gain"].value == 3.0
    assert mapping.handle(cc(1, 0)) and params["gain"].value == -1.0
    mapping.handle(cc(1, 100))
    assert params["gain"].value == pytest.approx(-1.0 + 4.0 * 100 / 127)
    mapping.handle(cc(2, 70))  # 70 / 127 * 10 = 5.51 -> 6
    assert params["steps"].value == 6 and isinstance(params["steps"].value, int)
    mapping.handle(cc(3, 64))
    assert params["flip"].value is True
    mapping.handle(cc(3, 63))
    assert params["flip"].value is False
    mapping.handle(cc(4, 127))
    assert params["offset"].value == 2.0


def test_other_messages_are_ignored(bended):
    mapping = tb.control.midi(bended, {1: "gain"}, channel=0)
    assert not mapping.handle(mido.Message("note_on", note=60))
    assert not mapping.handle(cc(5, 127))  # not mapped
    assert not mapping.handle(cc(1, 127, channel=3))  # other channel
    assert bended.controllables["gain"].value == 1.0


def test_bad_mappings_fail_when_made(bended):
    with pytest.raises(ValueError, match="open range"):
        tb.control.midi(bended, {1: "offset"})
    with pytest.raises(ValueError, match="0..127"):
        tb.control.midi(bended, {128: "gain"})
    with pytest.raises(tb.UnknownNameError, match="gain"):
        tb.control.midi(bended, {1: "gian"})


@pytest.mark.parametrize(
    "target, message",
    [
        (("gain", -2.0, 3.0), r"CC 1 -> 'gain': the bounds \(-2.0, 3.0\) leave the parameter's range \(-1.0, 3.0\)"),
        (("gain", 0.0, 30.0), r"leave the parameter's range"),
        (("steps", 0, 11), r"CC 1 -> 'steps': the bounds \(0, 11\) leave the parameter's range \(0, 10\)"),
        (("offset", 0.0, float("nan")), r"CC 1 -> 'offset': the bounds \(0.0, nan\) must be finite numbers"),
        (("offset", float("-inf"), 1.0), r"must be finite numbers"),
        (("offset", "0", 1.0), r"must be finite numbers"),
        (("gain", 0.0), r"CC 1: map it to a parameter name or to \(name, low, high\)"),
    ],
)
def test_bounds_outside_the_range_or_not_finite_are_refused_when_mapped(bended, target, message):
    with pytest.raises(ValueError, match=message):
        tb.control.midi(bended, {1: target})


def test_bounds_inside_the_range_and_turned_around_are_kept(bended):
    mapping = tb.control.midi(bended, {1: ["gain", 2.0, 0.0], 2: ("steps", 2, 8)})  # a list, as JSON gives
    mapping.handle(cc(1, 127))
    mapping.handle(cc(2, 127))
    assert bended.controllables["gain"].value == 0.0 and bended.controllables["steps"].value == 8


def test_a_missing_midi_backend_names_the_extra(bended, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "rtmidi", None)  # python-rtmidi not installed
    monkeypatch.delitem(sys.modules, "mido.backends.rtmidi", raising=False)
    monkeypatch.setattr(mido, "backend", mido.Backend("mido.backends.rtmidi", load=False))
    with pytest.raises(MissingExtraError, match=r"'nanoKONTROL2'.*rtmidi.*pip install 'torchbend\[midi\]'"):
        tb.control.midi(bended, {1: "gain"}, port="nanoKONTROL2")


def test_the_midi_extra_installs_a_backend():
    from pathlib import Path

    import tomllib

    extras = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(req.startswith("python-rtmidi==") for req in extras["midi"])
    assert "torchbend[midi]" in extras["control"] and "torchbend[midi]" in extras["studio"]
