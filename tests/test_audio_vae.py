import torch

import torchbend as tb
from torchbend.audio_datasets import synthetic_audio
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
        chunks = torch.cat([vae.decode(z[..., i:i + 4]) for i in range(0, z.shape[-1], 4)], -1)
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
    mean_spectrum_noise = torch.fft.irfft(torch.fft.rfft(clips).abs().mean(0, keepdim=True)
                                          * torch.exp(2j * torch.pi * torch.rand(4, 1, clips.shape[-1] // 2 + 1,
                                                                                 generator=torch.Generator().manual_seed(0))),
                                          clips.shape[-1])
    model = spectral_distance(recon, clips).item()
    assert model < spectral_distance(torch.zeros_like(clips), clips).item()
    assert model < spectral_distance(mean_spectrum_noise, clips).item()
    # as loud as the input, within 12 dB on average over 16 ms frames (the loudness term of the training)
    assert loudness_distance(recon, clips).item() < loudness_distance(0.25 * clips, clips).item()


def test_traced_decode_carries_the_stream_like_the_plain_model():
    vae = load_audio_vae()
    z = vae.encode(synthetic_audio(1, 3 * 2048, seed=7))
    vae.reset_cache()
    bended = tb.BendedModule(vae, buffers=[r".*pad.*|.*cache.*"])
    bended.trace("decode", z[..., :8])
    vae.reset_cache()
    with torch.no_grad():
        plain = [vae.decode(z[..., i:i + 8]) for i in range(0, 24, 8)]
        vae.reset_cache()
        traced = [bended.decode(z[..., i:i + 8]) for i in range(0, 24, 8)]
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

    import pytest

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
        eager = torch.cat([bended.forward(x[..., i:i + 2048]) for i in range(0, x.shape[-1], 2048)], -1)
    ratio, latent = vae.compression_ratio, vae.latent_size
    path = bended.export_nntilde(tmp_path / "bent.ts", methods={
        "forward": dict(in_channels=1, in_ratio=1, out_channels=1, out_ratio=1, test_method=False),
        "encode": dict(in_channels=1, in_ratio=1, out_channels=latent, out_ratio=ratio, test_method=False),
        "decode": dict(in_channels=latent, in_ratio=ratio, out_channels=1, out_ratio=1, test_method=False)})
    torch.save(x, tmp_path / "x.pt")
    code = (f"import torch, json; m = torch.jit.load({str(path)!r}); x = torch.load({str(tmp_path / 'x.pt')!r}); "
            "print(json.dumps([m.get_methods(), m.get_attributes(), m.encode_params.tolist(), "
            "m.decode_params.tolist(), m.reset_caches()])); "
            "out = torch.cat([m.forward(x[..., i:i + 2048]) for i in range(0, x.shape[-1], 2048)], -1); "
            f"torch.save(out, {str(tmp_path / 'out.pt')!r})")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    import json

    methods, attributes, encode, decode, caches = json.loads(result.stdout.strip().splitlines()[-1])
    assert methods == ["forward", "encode", "decode"] and attributes == ["none", "gain", "level"]
    assert encode == [1, 1, latent, ratio] and decode == [latent, ratio, 1, 1] and caches > 10
    streamed = torch.load(tmp_path / "out.pt")
    assert eager.abs().max() > 1e-3
    torch.testing.assert_close(streamed, eager, atol=1e-5, rtol=1e-4)  # continuity across the four buffers
