"""silero-vad's trained TorchScript file, as shipped in the `silero-vad` wheel: a real model whose whole network
runs inside ``if sr == 16000:`` in `forward`, with a stream state carried between 512-sample chunks."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

import torchbend as tb
from torchbend.audio.io import resample

silero_vad = pytest.importorskip("silero_vad", reason="silero-vad is not installed: pip install torchbend[dev]")
PATH = Path(silero_vad.__file__).parent / "data" / "silero_vad.jit"
CHUNK = 512
SENTENCE = "Bending a voice activity detector, one chunk at a time."


def vowels(seconds: float = 2.0, rate: int = 16000) -> torch.Tensor:
    """A vowel-like signal: a 120 Hz voice through the formants of /a/, in three syllables a second."""
    t = torch.arange(int(seconds * rate), dtype=torch.float64) / rate
    formants = [(700.0, 130.0), (1220.0, 70.0), (2600.0, 160.0)]
    voice = sum(
        torch.sin(2 * math.pi * 120.0 * k * t) * sum(math.exp(-(((120.0 * k - f) / (3 * b)) ** 2)) for f, b in formants)
        for k in range(1, 30)
    )
    envelope = 0.5 - 0.5 * torch.cos(2 * math.pi * 3 * t)
    return (0.5 * voice / voice.abs().max() * envelope).float()


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> tuple[torch.Tensor, bool]:
    """A spoken sentence at 16 kHz (espeak-ng), or vowels where espeak-ng is missing; and which it is."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        return vowels(), False
    path = tmp_path_factory.mktemp("speech") / "sentence.wav"
    subprocess.run([espeak, "-w", str(path), SENTENCE], check=True, timeout=60)
    with wave.open(str(path)) as f:
        assert f.getsampwidth() == 2 and f.getnchannels() == 1
        rate, frames = f.getframerate(), f.readframes(f.getnframes())
    samples = torch.from_numpy(np.frombuffer(frames, dtype=np.int16).astype(np.float32) / 32768)
    return resample(samples, rate, 16000), True


def chunks(signal: torch.Tensor) -> list[torch.Tensor]:
    padded = torch.nn.functional.pad(signal, (0, (-len(signal)) % CHUNK))
    return [c[None] for c in padded.split(CHUNK)]


def probabilities(model, pieces: list[torch.Tensor]) -> torch.Tensor:
    """Speech probability of each chunk, from a fresh stream state."""
    model.reset_states()
    with torch.no_grad():
        return torch.cat([model(c, 16000) for c in pieces]).flatten()


@pytest.fixture
def traced() -> tuple[tb.BendedModule, torch.jit.ScriptModule]:
    bended = tb.load(PATH)
    bended.trace("forward", torch.zeros(1, CHUNK), 16000)
    return bended, torch.jit.load(str(PATH))


def test_the_network_inside_the_rate_branch_is_named_readable_and_bendable(traced, speech):
    bended, plain = traced
    record = bended.engine.record("forward")
    assert ["decision", "argument(sr) == 16000", "forward"] in record.describe()
    encoder = bended.resolve_activations(r"_model\.encoder\..*")
    decoder = bended.resolve_activations(r"_model\.decoder.*")
    assert "_model.encoder.3.activation:x1.4" in encoder and "_model.decoder:h.1" in decoder
    assert not record.nested.keys() & set(encoder + decoder)  # none of them inside a block any more
    piece = chunks(speech[0])[10]
    bended.reset_states()
    values = bended.get_activations("_model.encoder.3.activation:x1.4", "_model.decoder:h.1", piece, 16000)
    assert values["_model.encoder.3.activation:x1.4"].shape[:2] == (1, 128)
    assert values["_model.decoder:h.1"].shape == (1, 128)
    bended.bend(tb.Scale(0.0), "forward:_model.encoder.3.activation:x1.4")  # the encoder's output, zeroed
    zero_in = probabilities(bended, chunks(speech[0])[:4])
    assert not torch.equal(zero_in, probabilities(plain, chunks(speech[0])[:4]))


def test_a_weight_bend_changes_the_speech_probabilities(traced, speech):
    bended, plain = traced
    signal, spoken = speech
    pieces = chunks(signal)
    before = probabilities(plain, pieces)
    if spoken:
        assert before.max() > 0.9  # the model hears the sentence
    bended.bend(tb.Scale(0.0), "_model.decoder.decoder.2.weight")  # the last 1x1 convolution: only its bias left
    bent = probabilities(bended, pieces)
    bias = plain.state_dict()["_model.decoder.decoder.2.bias"]
    torch.testing.assert_close(bent, torch.sigmoid(bias).expand_as(bent))
    assert (bent - before).abs().max() > (0.5 if spoken else 0.05)


def test_the_stream_state_carries_between_chunks_and_reset_is_exact(traced, speech):
    bended, plain = traced
    pieces = chunks(speech[0])[:8]
    expected = probabilities(plain, pieces)
    bended.bend(tb.Scale(1.0), "forward:_model.decoder:h.1")  # the rewritten graph runs, changing nothing
    assert torch.equal(probabilities(bended, pieces), expected)  # state read and written as the module does
    gain = tb.BendingParameter("gain", 0.5)
    bended.bend(tb.Scale(gain), "forward:_model.encoder.1.activation:input1.3")
    bent = probabilities(bended, pieces)
    assert not torch.equal(bent, expected)
    bended.reset()
    assert torch.equal(probabilities(bended, pieces), expected)
    assert torch.equal(probabilities(plain, pieces), expected)  # the loaded file's own module untouched


def test_another_rate_raises_naming_the_argument_or_retraces(traced):
    bended, plain = traced
    bended.bend(tb.Scale(1.0), "_model.encoder.0.reparam_conv.weight")
    with pytest.raises(tb.SpecializationError, match=r"sr=16000.*8000"):
        bended(torch.zeros(1, 256), 8000)
    again = tb.load(PATH)
    again.trace("forward", torch.zeros(1, CHUNK), 16000, retrace=True)
    again.bend(tb.Scale(1.0), "_model_8k.encoder.0.reparam_conv.weight")
    x = torch.randn(1, 256) * 0.1
    plain.reset_states()
    again.reset_states()
    with torch.no_grad():
        assert torch.equal(again(x, 8000), plain(x, 8000))
    assert again.engine.record("forward").baked == {"sr": 8000}
    assert any(n.startswith("_model_8k.encoder") for n in again.activation_names())


@pytest.mark.slow
def test_script_round_trips_in_a_fresh_process(traced, speech, tmp_path):
    bended, _ = traced
    gain = tb.BendingParameter("gain", 0.5, range=(0.0, 2.0))
    bended.bend(tb.Scale(gain), "forward:_model.encoder.2.activation:input2.3")
    bended.bend(tb.Scale(1.5), "_model.decoder.rnn.weight_hh")
    pieces = torch.cat(chunks(speech[0])[:6])
    expected = probabilities(bended, list(pieces.split(1)))
    gain.value = 1.0
    expected_at_1 = probabilities(bended, list(pieces.split(1)))
    gain.value = 0.5
    path = tmp_path / "bent_vad.ts"
    torch.jit.save(bended.script(), str(path))
    torch.save(pieces, tmp_path / "pieces.pt")
    code = f"""
import sys, torch
m = torch.jit.load({str(path)!r})
pieces = torch.load({str(tmp_path / "pieces.pt")!r})
def run():
    m.reset_states()
    with torch.no_grad():
        return torch.cat([m(c[None], 16000) for c in pieces]).flatten()
a = run()
m.set_gain(1.0)
b = run()
try:
    m(torch.zeros(1, 256), 8000)
    refused = ""
except Exception as error:
    refused = str(error)
torch.save((a, b, refused), {str(tmp_path / "out.pt")!r})
sys.exit(3 if "torchbend" in sys.modules else 0)
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    a, b, refused = torch.load(tmp_path / "out.pt")
    torch.testing.assert_close(a, expected)
    torch.testing.assert_close(b, expected_at_1)
    assert "specialised to sr=16000" in refused
