import pytest
import torch

import torchbend as tb
from torchbend.bending.target import Target


def target(shape=(4, 3, 2, 2), kind="activation", name="f:x"):
    return Target(name, kind, shape)


def test_chain_applies_in_order_and_flattens():
    chain = tb.Scale(2) >> tb.Bias(1) >> tb.Scale(3)
    assert len(chain.callbacks) == 3
    x = torch.randn(4, 3, 2, 2)
    assert torch.allclose(chain(x, chain.setup(target())), (x * 2 + 1) * 3)


def test_chain_can_bend_only_what_all_members_can():
    class NoWeights(tb.BendingCallback):
        weights = False

        def forward(self, x, state):
            return x

    chain = tb.Scale(2) >> NoWeights()
    assert chain.can_bend("activation") and not chain.can_bend("weight")


def test_live_parameters_are_found_through_chains_and_expressions():
    p = tb.BendingParameter("p", 1.0)
    q = tb.BendingParameter("q", 0.5)
    chain = tb.Scale(2 * p) >> tb.Mask(prob=q) >> tb.Affine(scale=p, bias=q)
    assert list(chain.live_parameters()) == [p, q]


def test_user_callback_with_state_and_runtime_inputs():
    class AddChannelOffset(tb.BendingCallback):
        def setup(self, t):
            return torch.arange(t.shape[1], dtype=torch.float32).view(1, -1, 1, 1)

        def forward(self, x, state, amount=1.0):
            return x + amount * state

    cb = AddChannelOffset()
    assert cb.runtime_inputs() == ("amount",)
    chain = tb.Scale(1) >> cb
    assert chain.runtime_inputs() == ("amount",)
    x = torch.zeros(2, 3, 1, 1)
    out = chain(x, chain.setup(target((2, 3, 1, 1))), amount=2.0)
    assert out.flatten().tolist() == [0.0, 2.0, 4.0] * 2


def test_chain_rejects_non_callbacks():
    with pytest.raises(TypeError, match="bending callbacks"):
        tb.CallbackChain(tb.Scale(2), lambda x: x)
