"""Train the audio model whose weights ship with torchbend.

    python -m torchbend.zoo.train_audio_vae            # writes torchbend/zoo/weights/audio_vae.pt

Fixed seed, fixed number of steps, one CPU thread and deterministic algorithms, so a run with the
same torch version reproduces the shipped file. Trains on clips of `torchbend.audio.datasets`
(drawn from the training seed) with a multi-resolution spectral loss, a loudness term (frame
levels in log RMS, which keeps reconstructions as loud as their inputs) and a small KL term.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from ..audio.datasets import CLIP_LENGTH, TRAIN_SEED, synthetic_audio
from .audio_vae import WEIGHTS, AudioVAE, make_audio_vae

FFT_SIZES = (2048, 1024, 512, 256, 128)


def _magnitudes(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, device=x.device)
    return torch.stft(x.flatten(0, -2), n_fft, n_fft // 4, window=window, return_complex=True).abs()


def spectral_distance(x: torch.Tensor, y: torch.Tensor, fft_sizes: tuple[int, ...] = FFT_SIZES) -> torch.Tensor:
    """Multi-resolution spectral distance: mean over FFT sizes of the linear and log magnitude L1 distances.

    ``x`` and ``y`` are (..., samples); 0 for identical signals.
    """
    total = x.new_zeros(())
    for n_fft in fft_sizes:
        mx, my = _magnitudes(x, n_fft), _magnitudes(y, n_fft)
        total = total + (mx - my).abs().mean() / my.abs().mean().clamp(min=1e-5)
        total = total + ((mx + 1e-4).log() - (my + 1e-4).log()).abs().mean()
    return total / len(fft_sizes)


def loudness_distance(x: torch.Tensor, y: torch.Tensor, frame: int = 256) -> torch.Tensor:
    """Mean absolute difference of the frames' log RMS levels (natural log): 0 for equally loud signals."""

    def level(s: torch.Tensor) -> torch.Tensor:
        return (s.unfold(-1, frame, frame).pow(2).mean(-1) + 1e-8).log() / 2

    return (level(x) - level(y)).abs().mean()


def vae_loss(vae: AudioVAE, x: torch.Tensor, beta: float, loudness: float = 0.0) -> torch.Tensor:
    mean, scale = vae.encode_distribution(x)
    z = mean + scale * torch.randn_like(mean)
    learned, spread = mean[:, 1:], scale[:, 1:]  # latent 0, the pitch, is measured: no noise, no KL term
    kl = 0.5 * (spread.pow(2) + learned.pow(2) - 1 - 2 * spread.log()).sum(1).mean()
    y = vae.decode(z)
    return spectral_distance(y, x) + beta * kl + (loudness * loudness_distance(y, x) if loudness else 0.0)


def train(
    steps: int = 4000,
    batch_size: int = 8,
    length: int = 4096,
    lr: float = 3e-3,
    beta: float = 0.001,
    pool: int = 256,
    seed: int = 0,
    progress: bool = True,
    loudness: float = 0.3,
) -> AudioVAE:
    """A trained, non-streaming audio model (in eval mode); deterministic for given arguments."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        return _train(steps, batch_size, length, lr, beta, pool, seed, progress, loudness)
    finally:
        torch.use_deterministic_algorithms(deterministic)


def _train(
    steps: int,
    batch_size: int,
    length: int,
    lr: float,
    beta: float,
    pool: int,
    seed: int,
    progress: bool,
    loudness: float,
) -> AudioVAE:
    torch.manual_seed(seed)
    clips = synthetic_audio(pool, CLIP_LENGTH, seed=TRAIN_SEED + seed)
    vae = make_audio_vae(streaming=False)
    optimizer = torch.optim.Adam(vae.parameters(), lr=lr)
    warm_up = max(0.05, 2.5 / max(steps, 3))  # 5% of the steps; more for short runs, whose warm-up must not end at 1
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=max(steps, 2), pct_start=warm_up)
    generator = torch.Generator().manual_seed(seed)
    ratio = vae.compression_ratio
    bar: Any = range(steps)  # or a tqdm bar over it
    if progress:
        from tqdm import tqdm

        bar = tqdm(bar, desc="training the audio model", unit="step")
    vae.train()
    for _ in bar:
        rows = torch.randint(len(clips), (batch_size,), generator=generator)
        starts = torch.randint((CLIP_LENGTH - length) // ratio + 1, (batch_size,), generator=generator) * ratio
        batch = torch.stack([clips[r, :, s : s + length] for r, s in zip(rows.tolist(), starts.tolist())])
        gain = 0.25 + 1.5 * torch.rand(batch_size, 1, 1, generator=generator)
        loss = vae_loss(vae, (batch * gain).clamp(-1, 1), beta, loudness)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if progress:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    return vae.eval()


def save(vae: AudioVAE, path: Path) -> None:
    """Save the weights (no streaming caches), floats as float16; loading casts them back."""
    state = {
        k: v.half() if v.is_floating_point() else v
        for k, v in vae.state_dict().items()
        if k.rsplit(".", 1)[-1] not in ("pad", "cache")
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the audio model shipped with torchbend.")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--pool", type=int, default=256, help="number of synthetic training clips")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    vae = train(steps=args.steps, pool=args.pool, seed=args.seed)
    save(vae, args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
