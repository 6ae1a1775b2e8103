import math
import subprocess
import sys

import pytest
import torch

pytest.importorskip("soundfile")
pytest.importorskip("matplotlib")

import torchbend.audio as tba  # noqa: E402


def sine(freq: float, rate: int, seconds: float = 0.5) -> torch.Tensor:
    return 0.5 * torch.sin(2 * math.pi * freq * torch.arange(int(rate * seconds)) / rate)[None]


def test_write_then_read_round_trips(tmp_path):
    wav = sine(440, 16000)
    path = tba.write(tmp_path / "a.wav", wav[None], 16000)
    back, rate = tba.read(path)
    assert rate == 16000 and back.shape == wav.shape
    torch.testing.assert_close(back, wav, atol=1e-4, rtol=0)


def test_read_resamples_and_keeps_the_pitch(tmp_path):
    tba.write(tmp_path / "a.wav", sine(1000, 22050), 22050)
    wav = tba.read(tmp_path / "a.wav", sample_rate=16000)
    assert wav.shape == (1, 8000)
    peak = torch.fft.rfft(wav[0]).abs().argmax().item() * 16000 / 8000
    assert abs(peak - 1000) <= 2


def test_resample_rejects_bad_rates():
    with pytest.raises(ValueError, match="positive"):
        tba.resample(torch.zeros(10), 0, 16000)


def test_spectrogram_peaks_at_the_sine():
    spec = tba.spectrogram(sine(2000, 16000), n_fft=512)
    assert spec.shape[0] == 257
    assert abs(spec.mean(1).argmax().item() * 16000 / 512 - 2000) < 40


def test_plot_audio_activations_one_row_per_sound(tmp_path):
    fig = tba.plot_audio_activations(
        [sine(220, 16000), sine(880, 16000)], 16000, titles=["low", "high"], path=tmp_path / "p.png"
    )
    assert len(fig.axes) == 2 and fig.axes[1].get_title(loc="left") == "high"
    assert (tmp_path / "p.png").stat().st_size > 0
    with pytest.raises(ValueError, match="titles"):
        tba.plot_audio_activations([sine(220, 16000)], 16000, titles=["a", "b"])
    assert tba.plot_waveform(sine(220, 16000), 16000) is not None
    assert len(tba.plot_spectrogram(sine(220, 16000), 16000).axes) == 2  # with its colorbar


def test_importing_torchbend_imports_neither_soundfile_nor_matplotlib():
    code = "import sys, torchbend; print('soundfile' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_load_rave_without_acids_rave_says_how_to_install(tmp_path):
    try:
        import rave  # noqa: F401

        pytest.skip("acids-rave is installed")
    except ImportError:
        pass
    with pytest.raises(ImportError, match="pip install acids-rave"):
        tba.load_rave(tmp_path)
