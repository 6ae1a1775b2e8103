import math

import pytest
import torch

import torchbend as tb
from torchbend.audio.datasets import synthetic_audio
from torchbend.zoo.audio_vae import WEIGHTS, load_audio_vae, make_audio_vae
from torchbend.zoo.train_audio_vae import loudness_distance, spectral_distance
from torchbend.zoo.train_audio_vae import main as train_main


def test_shipped_model_loads_with_its_attributes():
    vae = load_audio_vae()
    assert not vae.training and vae.sample_rate == 16000
    caches = [b for name, b in vae.named_buffers() if name.endswith(("pad", "cache"))]
    assert len(caches) > 10 and all(float(b.abs().sum()) == 0 for b in caches)  # created, then zeroed
    z = vae.encode(torch.zeros(2, 1, 4 * vae.compression_ratio))
    assert z.shape == (2, vae.latent_size, 4)


def test_decoding_in_chunks_equals_decoding_whole():
    vae = load_audio_vae()
    with torch.no_grad():
        z = vae.encode(synthetic_audio(1, 4096, seed=5))
        vae.reset_cache()
        whole = vae.decode(z)
        vae.reset_cache()
        chunks = torch.cat([vae.decode(z[..., i : i + 4]) for i in range(0, z.shape[-1], 4)], -1)
    assert whole.abs().max() > 1e-3
    torch.testing.assert_close(chunks, whole, atol=1e-5, rtol=1e-4)


def test_streaming_model_matches_the_training_model():
    vae, plain = load_audio_vae(), load_audio_vae(streaming=False)
    x = synthetic_audio(1, 2048, seed=6)
    with torch.no_grad():
        torch.testing.assert_close(vae(x), plain(x), atol=1e-5, rtol=1e-4)


def test_reconstructions_beat_silence_and_the_mean_spectrum():
    vae = load_audio_vae(streaming=False)
    clips = synthetic_audio(4, seed=1)
    with torch.no_grad():
        recon = vae(clips)
    mean_spectrum_noise = torch.fft.irfft(
        torch.fft.rfft(clips).abs().mean(0, keepdim=True)
        * torch.exp(
            2j * torch.pi * torch.rand(4, 1, clips.shape[-1] // 2 + 1, generator=torch.Generator().manual_seed(0))
        ),
        clips.shape[-1],
    )
    model = spectral_distance(recon, clips).item()
    assert model < spectral_distance(torch.zeros_like(clips), clips).item()
    assert model < spectral_distance(mean_spectrum_noise, clips).item()
    # as loud as the input, within 12 dB on average over 16 ms frames (the loudness term of the training)
    assert loudness_distance(recon, clips).item() < loudness_distance(0.25 * clips, clips).item()


def _dominant_frequency(x: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """The strongest frequency (Hz) of each signal in (..., samples), from a Hann-windowed spectrum."""
    spectrum = torch.fft.rfft(x * torch.hann_window(x.shape[-1]), n=4 * x.shape[-1]).abs()
    return spectrum.argmax(-1) * sample_rate / (4 * x.shape[-1])


def test_reconstructions_keep_the_pitch_of_sines_and_synthetic_notes():
    vae = load_audio_vae(streaming=False)
    frequencies = torch.tensor([82.4, 110.0, 196.0, 261.6, 440.0, 622.3, 987.8])
    t = torch.arange(16384) / vae.sample_rate
    sines = (0.4 * torch.sin(2 * torch.pi * frequencies[:, None] * t) * (t * 20).clamp(max=1))[:, None]
    with torch.no_grad():
        out = vae(sines)
    found = _dominant_frequency(out[..., 4096:], vae.sample_rate).flatten()
    semitones = (12 * torch.log2(found / frequencies)).abs()
    assert semitones.max() < 1, semitones  # every sine comes back within a semitone,
    assert semitones[frequencies >= 100].max() < 0.25, semitones  # and from 100 Hz up within an eighth tone
    # the synthetic notes: the strongest frequency of a loud frame is kept (within a semitone) in most frames
    clips = synthetic_audio(16, seed=1)
    with torch.no_grad():
        recon = vae(clips)
    frames_in, frames_out = (c.unfold(-1, 2048, 512).flatten(0, -2) for c in (clips, recon))
    loud = frames_in.pow(2).mean(-1) > 0.1 * frames_in.pow(2).mean(-1).max()
    ratio = _dominant_frequency(frames_out, vae.sample_rate) / _dominant_frequency(frames_in, vae.sample_rate)
    kept = ((ratio - 1).abs() < 0.06) & loud
    assert kept.sum() > 0.6 * loud.sum(), (int(kept.sum()), int(loud.sum()))


def test_latent_zero_is_the_pitch_and_bending_it_transposes():
    vae = load_audio_vae()
    t = torch.arange(8192) / vae.sample_rate
    x = (0.4 * torch.sin(2 * torch.pi * 220.0 * t)).view(1, 1, -1)
    with torch.no_grad():
        z = vae.encode(x)
    assert abs(float(z[0, 0, 8:].median()) - math.log2(220 / 440)) < 1 / 48  # within one pitch candidate
    bended = tb.BendedModule(vae, buffers=[r".*pad.*|.*cache.*"])
    bended.trace("decode", z[..., :8])
    vae.reset_cache()
    plain = bended.decode(z)
    bended.bend(tb.Select(tb.Bias(tb.BendingParameter("octaves", 1.0)), channels=[0]), "decode:z")
    vae.reset_cache()
    higher = bended.decode(z)
    semitones = 12 * torch.log2(
        _dominant_frequency(higher[..., 2048:], vae.sample_rate)
        / _dominant_frequency(plain[..., 2048:], vae.sample_rate)
    )
    assert abs(float(semitones) - 12) < 0.5


def test_a_model_needs_a_learned_latent_beside_the_pitch():
    with pytest.raises(ValueError, match="latent_size must be at least 2"):
        make_audio_vae(latent_size=1)


def test_weights_that_do_not_fit_the_model_are_refused(tmp_path, monkeypatch):
    import torchbend.zoo.audio_vae as audio_vae

    state = torch.load(WEIGHTS, weights_only=True)
    torch.save({k: v for k, v in state.items() if not k.startswith("decoder.harmonics")}, tmp_path / "old.pt")
    monkeypatch.setattr(audio_vae, "WEIGHTS", tmp_path / "old.pt")
    with pytest.raises(ValueError, match="does not fit this model.*retrain"):
        audio_vae.load_audio_vae()


def test_traced_decode_carries_the_stream_like_the_plain_model():
    vae = load_audio_vae()
    z = vae.encode(synthetic_audio(1, 3 * 2048, seed=7))
    vae.reset_cache()
    bended = tb.BendedModule(vae, buffers=[r".*pad.*|.*cache.*"])
    bended.trace("decode", z[..., :8])
    vae.reset_cache()
    with torch.no_grad():
        plain = [vae.decode(z[..., i : i + 8]) for i in range(0, 24, 8)]
        vae.reset_cache()
        traced = [bended.decode(z[..., i : i + 8]) for i in range(0, 24, 8)]
    for a, b in zip(traced, plain):
        torch.testing.assert_close(a, b)
    vae.reset_cache()
    with torch.no_grad():
        fresh_start = vae.decode(z[..., 8:16])
    assert not torch.allclose(fresh_start, plain[1])  # the second chunk does depend on the carried state


def test_training_script_runs_a_few_steps(tmp_path):
    out = tmp_path / "audio_vae.pt"
    train_main(["--steps", "2", "--pool", "2", "--out", str(out)])
    state = torch.load(out, weights_only=True)
    fresh = make_audio_vae(streaming=False).state_dict()
    assert set(state) == set(fresh) and all(v.dtype == torch.float16 for v in state.values())
    assert out.stat().st_size < WEIGHTS.stat().st_size * 1.1


def test_bent_nntilde_export_streams_2048_sample_buffers_in_a_fresh_process(tmp_path):
    import subprocess
    import sys

    pytest.importorskip("nn_tilde")
    vae = load_audio_vae()
    x = synthetic_audio(1, 4 * 2048, seed=3)
    bended = tb.BendedModule(vae, buffers=[r".*pad.*|.*cache.*"])
    with torch.no_grad():
        z = vae.encode(x[..., :2048])
    vae.reset_cache()
    bended.trace("forward", x[..., :2048])
    bended.trace("encode", x[..., :2048])
    bended.trace("decode", z)
    bended.bend(tb.Scale(tb.BendingParameter("gain", 1.5, range=(0.0, 4.0))), "decoder.net.0.weight")
    bended.bend(tb.Scale(tb.BendingParameter("level", 0.8, range=(0.0, 2.0))), "forward:decoder_net_0_weight")
    vae.reset_cache()
    with torch.no_grad():
        eager = torch.cat([bended.forward(x[..., i : i + 2048]) for i in range(0, x.shape[-1], 2048)], -1)
    ratio, latent = vae.compression_ratio, vae.latent_size
    path = bended.export_nntilde(
        tmp_path / "bent.ts",
        methods={
            "forward": dict(in_channels=1, in_ratio=1, out_channels=1, out_ratio=1, test_method=False),
            "encode": dict(in_channels=1, in_ratio=1, out_channels=latent, out_ratio=ratio, test_method=False),
            "decode": dict(in_channels=latent, in_ratio=ratio, out_channels=1, out_ratio=1, test_method=False),
        },
    )
    torch.save(x, tmp_path / "x.pt")
    code = (
        f"import torch, json; m = torch.jit.load({str(path)!r}); x = torch.load({str(tmp_path / 'x.pt')!r}); "
        "print(json.dumps([m.get_methods(), m.get_attributes(), m.encode_params.tolist(), "
        "m.decode_params.tolist(), m.reset_caches()])); "
        "out = torch.cat([m.forward(x[..., i:i + 2048]) for i in range(0, x.shape[-1], 2048)], -1); "
        f"torch.save(out, {str(tmp_path / 'out.pt')!r})"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    import json

    methods, attributes, encode, decode, caches = json.loads(result.stdout.strip().splitlines()[-1])
    assert methods == ["forward", "encode", "decode"] and attributes == ["none", "gain", "level"]
    assert encode == [1, 1, latent, ratio] and decode == [latent, ratio, 1, 1] and caches > 10
    streamed = torch.load(tmp_path / "out.pt")
    assert eager.abs().max() > 1e-3
    torch.testing.assert_close(streamed, eager, atol=1e-5, rtol=1e-4)  # continuity across the four buffers
