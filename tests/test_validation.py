"""Bad input fails at the moment of the mistake, with a message that names the fix, and leaves nothing behind."""

import json

import pytest
import torch

import torchbend as tb
from conftest import ConvVAE, seeded


@pytest.fixture
def bended(vae, z):
    b = tb.BendedModule(vae)
    b.trace("decode", z=z)
    return b


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: tb.Scale("a"), TypeError, r"Scale: scale must be a number or a tb.BendingParameter, got 'a'"),
        (lambda: tb.Mask(prob=5.0), ValueError, r"Mask: prob must be a number in \[0.0, 1.0\], got 5.0"),
        (lambda: tb.Mask(prob=float("nan")), ValueError, r"prob must be a number .*nan"),
        (lambda: tb.Normal(std=None), TypeError, "Normal: std must be a number"),
        (lambda: tb.Mask(0.5, dim="1"), TypeError, "Mask: dim must be an int"),
        (lambda: tb.ThresholdActivation(threshold=1.5), ValueError, r"threshold must be a number in \[0.0, 1.0\]"),
        (lambda: tb.ThresholdActivation(invert="yes"), TypeError, "invert must be True, False"),
        (lambda: tb.Mask(prob=tb.BendingParameter("p", 3.0)), ValueError, r"Mask: prob must be .* got 3.0"),
        (lambda: tb.BendingParameter("class", 1.0), ValueError, "not a keyword"),
        (lambda: tb.BendingParameter("p", float("inf")), ValueError, "allow_nonfinite=True"),
    ],
)
def test_callbacks_and_parameters_check_their_arguments_when_made(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_a_parameter_given_to_a_callback_keeps_its_domain():
    p = tb.BendingParameter("p", 0.5)
    mask = tb.Mask(prob=p)
    with pytest.raises(ValueError, match=r"Mask: prob must be a number in \[0.0, 1.0\]"):
        p.value = 5.0
    assert p.value == 0.5
    del mask
    p.value = 5.0  # no callback of that domain uses it any more


def test_update_rejects_nan_out_of_range_and_tensors_naming_the_parameter(bended):
    bended.bend(tb.Mask(prob=tb.BendingParameter("keep", 0.5, range=(0.0, 1.0))), "decoder.fc.weight")
    with pytest.raises(ValueError, match="'keep'.*nan"):
        bended.update("keep", float("nan"))
    with pytest.raises(ValueError, match="'keep' takes one number, got a Tensor of 2 values"):
        bended.update("keep", torch.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match="'keep'.*outside its range"):
        bended.update("keep", 2.0)
    assert bended.controllables["keep"].value == 0.5
    assert tb.BendingParameter("free", 1.0, allow_nonfinite=True).set(float("inf")) is None


def test_expressions_are_evaluated_in_floating_point_and_bounded():
    p = tb.BendingParameter("p", 10)
    assert (p + 1).value == 11 and isinstance((p + 1).value, int)
    with pytest.raises(ValueError, match="cannot be evaluated|not a finite number"):
        (p**10000000).value  # noqa: B018


@pytest.mark.parametrize(
    "callback, target, message",
    [
        (lambda: tb.ThresholdActivation(0.5, dim=5), "decoder_net_convt0", "ThresholdActivation.*dim=5"),
        (lambda: tb.Permute(dim=3), "decoder.fc.weight", "dim 3 is out of range for decoder.fc.weight"),
        (lambda: tb.Lambda(lambda t: t.sum()), "decoder.fc.weight", "a weight bend must keep the shape"),
        (lambda: tb.Lambda(lambda t: t[None, None] + torch.zeros(3)), "decoder_net_convt1", "fails on decode:"),
    ],
)
def test_a_bend_that_cannot_work_fails_at_bend_time_and_leaves_nothing(bended, z, callback, target, message):
    before = bended.decode(z)
    with pytest.raises(tb.BendingError, match=message):
        bended.bend(callback(), target)
    assert bended.bends == []
    assert torch.equal(bended.decode(z), before)


def test_an_integer_buffer_is_not_silently_truncated():
    model = seeded(ConvVAE())
    bended = tb.BendedModule(model, buffers=[r".*num_batches_tracked"])
    with pytest.raises(tb.BendingError, match="truncated"):
        bended.bend(tb.Normal(0.5, seed=0), "decoder.net.bn0.num_batches_tracked")
    assert bended.bends == []


def test_invalid_regular_expressions_are_reported_as_such(bended):
    with pytest.raises(tb.UnknownNameError, match="not a valid regular expression"):
        bended.bend(tb.Scale(2.0), "decoder.net.convt0(")
    with pytest.raises(tb.UnknownNameError, match="not a valid regular expression"):
        bended.resolve_parameters("[decoder")


# --- config files are untrusted input --------------------------------------------------------
def _config(bends, parameters=()):
    return {
        "format": "torchbend.bending-config",
        "version": 1,
        "model": {},
        "parameters": list(parameters),
        "bends": bends,
    }


def _write(tmp_path, data, raw=None):
    path = tmp_path / "bends.json"
    if raw is not None:
        path.write_bytes(raw)
    else:
        path.write_text(json.dumps(data))
    return path


SCALE = {"callback": {"type": "Scale", "args": {"scale": 2.0}}, "targets": ["decoder.fc.weight"]}


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a text file"),
        (b"[" * 100000 + b"]" * 100000, "nested too deeply|not valid JSON"),
        (json.dumps(_config([SCALE])).replace("2.0", "1" * 5000).encode(), "out of bounds|not valid JSON"),
        (json.dumps(_config([SCALE])).replace("2.0", "1e300").encode(), "out of bounds"),
        (json.dumps(_config([SCALE])).replace("2.0", "NaN").encode(), "not valid JSON"),
        (json.dumps({**_config([SCALE]), "extra": 1}).encode(), r"unknown keys \['extra'\]"),
        (
            json.dumps(_config([{**SCALE, "callback": {"type": "os.system", "args": {}}}])).encode(),
            "unknown callback 'os.system'; known: ",
        ),
        (
            json.dumps(_config([{**SCALE, "callback": {"type": "Scale", "args": {"scale": "abc"}}}])).encode(),
            r"bends\[0\].callback.args: Scale: scale must be a number",
        ),
        (
            json.dumps(_config([{**SCALE, "callback": {"type": "Scale", "args": {"scale": None}}}])).encode(),
            "Scale: scale must be a number",
        ),
        (json.dumps(_config([{**SCALE, "targets": ["a" * 600]}])).encode(), r"targets\[0\]: .*longer than 512"),
        (
            json.dumps(
                _config(
                    [
                        {
                            **SCALE,
                            "callback": {
                                "type": "Scale",
                                "args": {"scale": {"expression": "pow", "operands": [10, 10000000]}},
                            },
                        }
                    ]
                )
            ).encode(),
            "cannot be evaluated|not a finite",
        ),
    ],
)
def test_malformed_config_files_raise_config_error_naming_the_file(tmp_path, content, message):
    path = _write(tmp_path, None, raw=content)
    with pytest.raises(tb.ConfigError, match=message) as info:
        tb.BendingConfig.load(path)
    assert str(path) in str(info.value)


def test_a_config_that_fails_applies_nothing(tmp_path, vae, z):
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    bad = _config([SCALE, {"callback": {"type": "Scale", "args": {"scale": 1.0}}, "targets": ["no.such.weight"]}])
    config = tb.BendingConfig.load(_write(tmp_path, bad))
    with pytest.raises(tb.ConfigError, match="no.such.weight"):
        bended.bend(config)
    assert bended.bends == []
    assert torch.equal(bended.decode(z), vae.decode(z))


def test_a_parameter_named_like_a_python_keyword_in_a_file_is_refused(tmp_path):
    data = _config([SCALE], [{"name": "class", "type": "float", "value": 1.0, "range": [None, None]}])
    with pytest.raises(tb.ConfigError, match="not a keyword"):
        tb.BendingConfig.load(_write(tmp_path, data))


class Codes(torch.nn.Module):
    """Integer codes looked up in an embedding, as an audio codec's quantiser does."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)

    def forward(self, x):
        return self.emb((x.abs() * 3).long().clamp(0, 9))


def test_a_bend_that_changes_an_activations_dtype_or_shape_is_refused_when_bent():
    bended = tb.BendedModule(Codes())
    x = torch.randn(2, 5)
    bended.trace("forward", x)
    refused = r"turns forward:clamp \(int64, shape \(2, 5\)\) into float32.*used by emb"
    with pytest.raises(tb.BendingError, match=refused):
        bended.bend(tb.Scale(0.5), "clamp", fn="forward")
    with pytest.raises(tb.BendingError, match=r"into float32, shape \(2, 5, 1\)"):
        bended.bend(tb.Lambda(lambda t: t.float().mean(-1, keepdim=True)), "emb", fn="forward")
    assert bended.bends == [] and torch.equal(bended(x), bended.module(x))
