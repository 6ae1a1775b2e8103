import json

import pytest
import torch

import torchbend as tb
from conftest import ConvVAE, run_bounded, seeded
from torchbend import naming


def bended_vae(z):
    b = tb.BendedModule(seeded(ConvVAE()))
    b.trace("decode", z=z)
    return b


def wave(x):
    return torch.sin(3 * x)


tb.register_callback(wave, "test_config.wave")


@tb.register_callback
class Clip(tb.BendingCallback):
    def __init__(self, limit=1.0):
        super().__init__()
        self.limit = limit

    def forward(self, x, state):
        return x.clamp(-float(self.limit), float(self.limit))


def test_round_trip_reproduces_outputs_exactly(tmp_path, z):
    source = bended_vae(z)
    keep = tb.BendingParameter("keep", 0.4, range=(0.0, 1.0))
    source.bend(tb.Mask(keep), "decoder.net.convt0.weight")  # seed drawn from the global generator
    source.bend(tb.Scale(2 * keep) >> tb.Normal(0.1, dim=1), "decoder_net_relu0", fn="decode")
    source.bend(tb.Lambda(wave), "decoder.fc.bias")
    source.bend(Clip(tb.BendingParameter("limit", 0.3)), "decoder_net_convt1", fn="decode")
    source.bend(tb.ThresholdActivation(0.5, dim=1, invert=True), "decoder_net_bn0", fn="decode")
    expected = source.decode(z)
    path = tmp_path / "bends.json"
    source.bending_config().save(path)

    data = json.loads(path.read_text())  # readable JSON, nothing pickled
    assert data["parameters"] == [
        {"name": "keep", "type": "float", "value": 0.4, "range": [0.0, 1.0]},
        {"name": "limit", "type": "float", "value": 0.3, "range": [None, None]},
    ]
    assert data["bends"][0]["callback"]["type"] == "Mask" and isinstance(
        data["bends"][0]["callback"]["args"]["seed"], int
    )
    assert data["bends"][1]["targets"] == ["decode:decoder_net_relu0"]
    assert data["bends"][2]["callback"]["args"]["fn"] == {"function": "test_config.wave"}

    target = bended_vae(z)
    group = target.bend(tb.BendingConfig.load(path))
    assert torch.equal(target.decode(z), expected)
    assert set(target.controllables) == {"keep", "limit"}
    target.update("keep", 1.0)  # parameters stay live and shared
    source.update("keep", 1.0)
    assert torch.equal(target.decode(z), source.decode(z))
    group.remove()
    assert target.bends == []


def test_unregistered_functions_and_callbacks_are_refused_at_save(z):
    bended = bended_vae(z)
    bended.bend(tb.Lambda(lambda x: x * 2), "decoder.fc.bias")
    with pytest.raises(tb.ConfigError, match=r"bends\[0\].callback.args.fn: .*not registered"):
        bended.bending_config().to_dict()

    class Unknown(tb.BendingCallback):
        def forward(self, x, state):
            return x

    bended.reset()
    bended.bend(Unknown(), "decoder.fc.bias")
    with pytest.raises(tb.ConfigError, match="register_callback"):
        bended.bending_config().to_dict()


def valid_config(z):
    bended = bended_vae(z)
    bended.bend(tb.Scale(2.0), "decoder.fc.weight")
    bended.bend(tb.Bias(1.0), "decode:decoder_net_convt0")
    return bended.bending_config().to_dict()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d.update(version=99), "version"),
        (lambda d: d["bends"][0]["callback"].update(type="Explode"), r"bends\[0\].callback.type: unknown callback"),
        (lambda d: d["bends"][1]["callback"]["args"].update(nope=1), r"bends\[1\].callback.args: Bias takes no"),
        (lambda d: d["bends"][1].update(targets="x"), r"bends\[1\].targets"),
        (lambda d: d["bends"][0]["callback"]["args"].update(scale={"parameter": "ghost"}), "unknown parameter"),
        (lambda d: d.update(parameters=[{"name": "p", "type": "str", "value": 1}]), r"parameters\[0\].type"),
        (
            lambda d: d["bends"][0]["callback"]["args"].update(scale=10**400),
            r"bends\[0\].callback.args.scale: the number 1000000000000000000000000000000000000\.\.\. is out of bounds",
        ),
        (
            lambda d: d.update(parameters=[{"name": "p", "type": "int", "value": -(10**400)}]),
            r"parameters\[0\]: the number -100000000000000000000000000000000000\.\.\. is out of bounds",
        ),
        (
            lambda d: d.update(parameters=[{"name": "p", "type": "int", "value": 1, "range": [0, 10**400]}]),
            r"parameters\[0\]: the number .* is out of bounds",
        ),
    ],
)
def test_malformed_configs_name_the_field(z, edit, message):
    data = valid_config(z)
    edit(data)
    with pytest.raises(tb.ConfigError, match=message):
        tb.BendingConfig.from_dict(data)


def test_missing_target_or_other_model_applies_nothing(z, tmp_path):
    data = valid_config(z)
    data["bends"][1]["targets"] = ["decode:decoder_net_convt9"]
    target = bended_vae(z)
    with pytest.raises(tb.ConfigError, match=r"bends\[1\].targets: .*decoder_net_convt9"):
        target.bend(tb.BendingConfig.from_dict(data))
    assert target.bends == []  # the first bend was rolled back

    other = tb.BendedModule(seeded(torch.nn.Sequential(torch.nn.Linear(8, 3))))
    with pytest.raises(tb.ConfigError, match="model.fingerprint"):
        other.bend(tb.BendingConfig.from_dict(valid_config(z)))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(tb.ConfigError, match="not valid JSON"):
        tb.BendingConfig.load(bad)


# patterns that freeze Python's `re` for hours on a 40-character name, and pass the old nested-quantifier filter
FREEZING = ["(.|.)*!", "((.+))+!", ".*" * 30 + "!"]
BEND_FROM_FILES = """
import collections, json, sys, torch
if sys.argv[1] == "guard":
    sys.modules["re2"] = None  # as if google-re2 were not installed
import torchbend as tb
model = torch.nn.Sequential(collections.OrderedDict(a_layer_with_a_rather_long_name=torch.nn.Linear(4, 4)))
bended = tb.BendedModule(model)
bended.trace("forward", input=torch.zeros(1, 4))
for pattern in json.loads(sys.argv[2]):
    data = {"format": "torchbend.bending-config", "version": 1, "model": {}, "parameters": [],
            "bends": [{"callback": {"type": "Scale", "args": {"scale": 2.0}}, "targets": [pattern]}]}
    try:
        print(len(bended.bend(tb.BendingConfig.from_dict(data)).bends), "bend(s)")
    except tb.ConfigError as error:
        print(str(error).replace(pattern, "<pattern>"))
"""


@pytest.mark.parametrize("engine", ["re2", "guard"])
def test_freezing_target_patterns_in_a_config_are_matched_in_bounded_time(engine):
    if engine == "re2":
        pytest.importorskip("re2", reason="google-re2 is not installed")
    lines = run_bounded(BEND_FROM_FILES, engine, json.dumps(FREEZING + [r"a_layer_.*\.(weight|bias)"]))
    if engine == "re2":  # matched in linear time: they match nothing
        assert all(
            line.startswith("bends[0].targets: no weight or activation named or matching '<pattern>'")
            for line in lines[:3]
        ), lines
    else:  # refused when read, naming the pattern and the fix
        assert all(
            line.startswith("bends[0].targets[0]: the pattern") and "pip install google-re2" in line
            for line in lines[:3]
        ), lines
    assert lines[3] == "1 bend(s)"  # an ordinary pattern still works


def test_the_guard_refuses_what_backtracks_and_keeps_ordinary_patterns(monkeypatch):
    monkeypatch.setattr(naming, "_re2", lambda: None)
    for pattern in FREEZING + ["(ab|a)*c", "(x.?){9}", "(?:conv\\d+)+", ".*a.*b.*c.*d", "a?" * 20 + "a" * 20]:
        with pytest.raises(tb.BendingError, match="google-re2"):
            naming.safe_pattern(pattern)
    for pattern in [
        r"decoder\.net\.convt\d\.weight",
        ".*conv.*weight",
        r"(?:conv|norm)\d+",
        "(ab){3}c",
        "(a|b)*c",
        r".*attn.*@transformer\.h\.1\..*",
        "(?=decoder).*fc.*",
    ]:
        assert naming.safe_pattern(pattern).pattern == pattern
    with pytest.raises(tb.BendingError, match="longer than 512"):
        naming.safe_pattern("a" * 513)


def test_patterns_from_python_keep_re_and_configs_from_python_are_trusted(z):
    bended = bended_vae(z)
    lookahead = r"(?=decoder\.fc)decoder\.fc\.(weight|bias)"  # RE2 has no lookaheads
    assert bended.resolve_parameters(lookahead) == ["decoder.fc.weight", "decoder.fc.bias"]
    assert len(bended.bend(tb.BendingConfig((tb.Scale(2.0), lookahead))).bends) == 1
    if naming._re2() is not None:
        with naming.untrusted_patterns(), pytest.raises(tb.BendingError, match="not a valid name or pattern for RE2"):
            bended.resolve_parameters(lookahead)
    assert not tb.BendingConfig((tb.Scale(2.0), lookahead)).untrusted
    assert tb.BendingConfig.from_dict(valid_config(z)).untrusted
