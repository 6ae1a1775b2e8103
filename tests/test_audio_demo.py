import pytest
import torch

pytest.importorskip("soundfile")
pytest.importorskip("matplotlib")

from torchbend.apps import demo_audio as demo  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("audio-demo")
    return out, *demo.run_audio_demo(out, seed=0)


@pytest.fixture(scope="module")
def results(written):
    return written[2]


def test_every_bend_changes_the_reconstruction(results):
    clips, reconstruction = results["audio_00_reconstruction"]
    assert reconstruction.shape == clips.shape
    for name in ("audio_01_weight_mask", "audio_02_weight_scale", "audio_03_activation_threshold"):
        (bent,) = results[name]
        assert bent.shape == reconstruction.shape and not torch.allclose(bent, reconstruction, atol=1e-3), name


def test_interpolation_mixes_go_from_one_clip_to_the_other(results):
    _, reconstruction = results["audio_00_reconstruction"]
    mixes = results["audio_04_interpolation"]
    assert len(mixes) == 3
    distance_to_first = [(m[0] - reconstruction[0]).norm().item() for m in mixes]
    assert distance_to_first == sorted(distance_to_first)


def test_no_sound_is_written_at_full_scale_and_a_loud_one_is_reported(written):
    soundfile = pytest.importorskip("soundfile")

    out, section, results = written
    for step in demo.STEPS:
        for i, sound in enumerate(results[step.name]):
            data, _ = soundfile.read(out / "audio" / f"{step.name}_{i}.wav")
            assert abs(data).max() <= 0.991, (step.name, i)  # no sample at full scale
            assert float(sound.abs().max()) <= 0.99 or f"Sound {i + 1} peaks at" in section
    loud = torch.tanh(torch.linspace(-4, 4, 1000))[None, None]  # saturated, as Scale(-2) makes it
    note = demo.level_note(0, loud, int((loud.abs() >= 0.999).sum()))
    assert note.startswith("Sound 1 peaks at 1.00, with 50 of its 1,000 samples at full scale")
    assert "0.1 dB quieter" in note
    assert demo.level_note(1, loud * 0.5, 0) == "" and "silent" in demo.level_note(2, loud * 0, 0)


def test_limit_peak_scales_only_what_is_too_loud():
    from torchbend.audio.io import limit_peak

    quiet = torch.tensor([0.1, -0.5])
    assert limit_peak(quiet) == (quiet, 0)
    loud, at_full_scale = limit_peak(torch.tensor([0.5, -2.0, 1.5, 0.9995]))
    assert at_full_scale == 3 and torch.allclose(loud, torch.tensor([0.2475, -0.99, 0.7425, 0.4948]), atol=1e-4)
    with pytest.raises(ValueError, match="peak"):
        limit_peak(quiet, peak=1.5)
