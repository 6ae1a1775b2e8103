import pytest
import torch

import torchbend as tb
from torchbend.bending.target import Target

ACT = Target("f:x", "activation", (8, 6, 5, 5))
WEIGHT = Target("conv.weight", "weight", (6, 3, 3, 3))


def test_mask_keeps_about_prob_and_zeroes_the_rest():
    mask = tb.Mask(prob=0.2, seed=0)
    x = torch.ones(WEIGHT.shape)
    out = mask(x, mask.setup(WEIGHT))
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert 0.15 < out.mean().item() < 0.25


def test_mask_is_drawn_once_and_rethresholded_when_prob_changes():
    p = tb.BendingParameter("p", 0.3)
    mask = tb.Mask(prob=p, seed=1)
    state = mask.setup(WEIGHT)
    x = torch.ones(WEIGHT.shape)
    first = mask(x, state)
    assert torch.equal(mask(x, state), first)
    p.value = 0.6
    wider = mask(x, state)
    assert wider.sum() > first.sum()
    assert torch.all(wider >= first)  # the kept set only grows
    p.value = 1.0
    assert torch.equal(mask(x, state), x)
    p.value = 0.0
    assert mask(x, state).sum() == 0


def test_seed_makes_draws_reproducible_and_distinct_per_target():
    a = tb.Mask(0.5, seed=3)
    b = tb.Mask(0.5, seed=3)
    x = torch.ones(WEIGHT.shape)
    assert torch.equal(a(x, a.setup(WEIGHT)), b(x, b.setup(WEIGHT)))
    other = Target("other.weight", "weight", WEIGHT.shape)
    assert not torch.equal(a(x, a.setup(WEIGHT)), a(x, a.setup(other)))


def test_activation_draws_broadcast_over_batch_and_dim_draws_per_index():
    mask = tb.Mask(0.5, seed=0)
    state = mask.setup(ACT)
    assert state.base.shape == (1, 6, 5, 5)
    out = mask(torch.ones(3, 6, 5, 5), state)
    assert torch.equal(out[0], out[2])
    per_channel = tb.Mask(0.5, seed=0, dim=1)
    out = per_channel(torch.ones(3, 6, 5, 5), per_channel.setup(ACT))
    channel_values = out.amax(dim=(0, 2, 3))
    assert torch.equal(out, channel_values.view(1, 6, 1, 1).expand(3, 6, 5, 5))
    with pytest.raises(ValueError, match="out of range"):
        tb.Mask(0.5, dim=4).setup(ACT)


def test_normal_adds_fixed_noise_scaled_by_std():
    std = tb.BendingParameter("std", 0.0)
    noise = tb.Normal(std=std, seed=0)
    state = noise.setup(WEIGHT)
    x = torch.randn(WEIGHT.shape)
    assert torch.equal(noise(x, state), x)
    std.value = 0.5
    once = noise(x, state)
    assert torch.equal(noise(x, state), once)
    std.value = 1.0
    assert torch.allclose(noise(x, state) - x, 2 * (once - x))
    assert 0.3 < (once - x).std().item() < 0.7


def test_permute_is_a_fixed_permutation_along_dim():
    perm = tb.Permute(dim=1, seed=0)
    state = perm.setup(ACT)
    x = torch.arange(6.0).view(1, 6, 1, 1).expand(2, 6, 5, 5)
    out = perm(x, state)
    assert sorted(out[0, :, 0, 0].tolist()) == list(range(6))
    assert not torch.equal(out, x)
    assert torch.equal(perm(x, state), out)
    with pytest.raises(ValueError, match="batch axis"):
        tb.Permute(dim=0).setup(ACT)
    with pytest.raises(ValueError, match="size 4"):
        perm(torch.ones(2, 4, 5, 5), state)
