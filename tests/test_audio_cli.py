import pytest
import torch

pytest.importorskip("soundfile")

import torchbend as tb  # noqa: E402
from torchbend.apps import cli  # noqa: E402
from torchbend.apps.audio_cli import load_bended_audio_model  # noqa: E402
from torchbend.audio import read, write  # noqa: E402
from torchbend.audio.datasets import synthetic_audio  # noqa: E402


def test_audio_command_bends_a_file_buffer_by_buffer(tmp_path, capsys):
    source = write(tmp_path / "in.wav", synthetic_audio(1, 5000, seed=3)[0], 16000)  # not a whole number of buffers
    bended, _ = load_bended_audio_model()
    bended.bend(tb.Scale(scale=tb.BendingParameter("scale", -2.0)), "decoder.harmonics.amplitude.2.weight")
    bended.bending_config().save(tmp_path / "bends.json")

    assert cli.main(["audio", str(source), "--out", str(tmp_path / "plain.wav")]) == 0
    assert (
        cli.main(["audio", str(source), "--config", str(tmp_path / "bends.json"), "--out", str(tmp_path / "bent.wav")])
        == 0
    )
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


@pytest.fixture(scope="module")
def sound(tmp_path_factory):
    """Half a second at 44.1 kHz, not the model's 16 kHz."""
    from torchbend.audio.io import resample

    return write(
        tmp_path_factory.mktemp("snd") / "in.wav", resample(synthetic_audio(1, 8000, seed=3)[0], 16000, 44100), 44100
    )


def test_audio_comes_back_at_the_input_rate_and_level(sound, tmp_path, capsys):
    assert cli.main(["audio", str(sound), "--out", str(tmp_path / "out.wav")]) == 0
    source, _ = read(sound)
    out, rate = read(tmp_path / "out.wav")
    assert rate == 44100 and out.shape == source.shape
    assert abs(out.pow(2).mean().sqrt() / source.pow(2).mean().sqrt() - 1) < 0.01
    assert "level matched" in capsys.readouterr().err
    assert (
        cli.main(
            ["audio", str(sound), "--sample-rate", "16000", "--no-match-level", "--out", str(tmp_path / "raw.wav")]
        )
        == 0
    )
    raw, rate = read(tmp_path / "raw.wav")
    assert rate == 16000 and raw.shape == (1, 8000)
    assert raw.pow(2).mean().sqrt() < 0.8 * source.pow(2).mean().sqrt()  # the model's own level, quieter


def test_audio_decode_targets_apply_inside_forward(sound, tmp_path, capsys):
    assert cli.main(["audio", str(sound), "--out", str(tmp_path / "plain.wav")]) == 0
    assert (
        cli.main(
            [
                "audio",
                str(sound),
                "--bend",
                "Select(Bias(1.0), channels=[0])@decode:z",
                "--out",
                str(tmp_path / "up.wav"),
            ]
        )
        == 0
    )
    assert "forward runs as decode(encode(x))" in capsys.readouterr().err
    plain, _ = read(tmp_path / "plain.wav")
    up, _ = read(tmp_path / "up.wav")
    assert (plain - up).abs().mean() > 0.2 * plain.abs().mean()  # an octave up, not the same file


def test_audio_target_outside_what_runs_is_an_error(sound, tmp_path, capsys):
    assert (
        cli.main(
            [
                "audio",
                str(sound),
                "--method",
                "encode",
                "--bend",
                "Scale(2.0)@decode:z",
                "--out",
                str(tmp_path / "z.pt"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "'decode:z' is in decode" in err and "runs encode" in err and "--method decode" in err


def test_audio_encode_then_decode(sound, tmp_path):
    assert cli.main(["audio", str(sound), "--method", "encode", "--out", str(tmp_path / "z.pt")]) == 0
    z = torch.load(tmp_path / "z.pt", weights_only=True)
    assert z.shape == (1, 8, 32)  # 8000 samples at 16 kHz, 256 a frame, rounded up
    assert cli.main(["audio", str(tmp_path / "z.pt"), "--method", "decode", "--out", str(tmp_path / "x.wav")]) == 0
    out, rate = read(tmp_path / "x.wav")
    assert rate == 16000 and out.shape == (1, 32 * 256)


def test_audio_never_clips_silently(sound, tmp_path, capsys):
    loud = ["--bend", "Scale(30.0)@forward:tanh"]  # the output, past full scale
    assert cli.main(["audio", str(sound), *loud, "--no-match-level", "--out", str(tmp_path / "clip.wav")]) == 0
    err = capsys.readouterr().err
    assert "samples are clipped to full scale" in err and "peaks at" in err


def test_matching_the_level_scales_down_rather_than_clip(capsys):
    from torchbend.apps.audio_cli import level

    spiky = torch.zeros(1, 1000)
    spiky[0, 10] = 0.5  # matching a loud reference's RMS would put this peak far past full scale
    out = level(spiky, torch.full((1000,), 0.5))
    assert out.abs().max() == pytest.approx(1.0) and "would clip (peak 15.81)" in capsys.readouterr().err
    assert torch.equal(level(spiky, None), spiky) and capsys.readouterr().err == ""
