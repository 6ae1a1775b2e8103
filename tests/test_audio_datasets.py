import torch

from torchbend.audio.datasets import synthetic_audio


def test_same_seed_same_clips_other_seed_other_clips():
    a, b, c = synthetic_audio(3, 2048, seed=0), synthetic_audio(3, 2048, seed=0), synthetic_audio(3, 2048, seed=1)
    assert a.shape == (3, 1, 2048) and torch.equal(a, b) and not torch.equal(a, c)


def test_clips_are_audible_and_within_range():
    clips = synthetic_audio(8, seed=2)
    peaks = clips.abs().amax(-1).flatten()
    assert bool((peaks <= 0.9 + 1e-6).all()) and bool((peaks >= 0.1 - 1e-6).all())
