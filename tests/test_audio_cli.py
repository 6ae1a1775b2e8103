import pytest

pytest.importorskip("soundfile")

import torchbend as tb  # noqa: E402
from torchbend import cli  # noqa: E402
from torchbend.audio import read, write  # noqa: E402
from torchbend.audio.cli import load_bended_audio_model  # noqa: E402
from torchbend.audio_datasets import synthetic_audio  # noqa: E402


def test_audio_command_bends_a_file_buffer_by_buffer(tmp_path, capsys):
    source = write(tmp_path / "in.wav", synthetic_audio(1, 5000, seed=3)[0], 16000)  # not a whole number of buffers
    bended, _ = load_bended_audio_model()
    bended.bend(tb.Scale(scale=tb.BendingParameter("scale", -2.0)), "decoder.harmonics.amplitude.2.weight")
    bended.bending_config().save(tmp_path / "bends.json")

    assert cli.main(["audio", str(source), "--out", str(tmp_path / "plain.wav")]) == 0
    assert cli.main(["audio", str(source), "--config", str(tmp_path / "bends.json"),
                     "--out", str(tmp_path / "bent.wav")]) == 0
    assert "bent.wav" in capsys.readouterr().out
    plain, rate = read(tmp_path / "plain.wav")
    bent, _ = read(tmp_path / "bent.wav")
    assert rate == 16000 and plain.shape == bent.shape == (1, 5000)
    assert plain.abs().max() > 1e-3
    assert (plain - bent).abs().mean() > 0.1 * plain.abs().mean()


def test_audio_command_needs_an_output(capsys):
    with pytest.raises(SystemExit):
        cli.main(["audio", "in.wav"])
    assert "--out" in capsys.readouterr().err
