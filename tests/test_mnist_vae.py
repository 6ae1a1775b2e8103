import pytest
import torch
from torch.nn import functional as F

import torchbend as tb
from torchbend.datasets import mnist
from torchbend.zoo import load_mnist_vae, make_mnist_vae
from torchbend.zoo.train_mnist_vae import train


def test_seed_patterns_resolve():
    bended = tb.BendedModule(make_mnist_vae().eval())
    bended.trace("decode", z=torch.randn(4, 64))
    assert bended.resolve_parameters(r"decoder.net.convt.*weight.*") == [
        f"decoder.net.convt{i}.weight" for i in range(4)
    ]
    assert bended.resolve_activations(r"decoder_net_convt.*", fn="decode") == [
        f"decoder_net_convt{i}" for i in range(4)
    ]


def test_shapes_and_positive_variance():
    vae = make_mnist_vae().eval()
    mu, var = vae.encode(torch.rand(3, 1, 28, 28))
    assert mu.shape == var.shape == (3, 64) and bool((var > 0).all())
    assert vae.decode(mu).shape == (3, 1, 28, 28)


def test_shipped_weights_reconstruct_test_digits():
    trained, untrained = load_mnist_vae(), make_mnist_vae().eval()
    assert not trained.training
    digits = mnist("test").images[:64]
    with torch.no_grad():
        errors = [F.binary_cross_entropy(v(digits), digits).item() for v in (trained, untrained)]
    assert errors[0] < 0.3 < errors[1]


@pytest.mark.slow
def test_training_is_deterministic():
    a = train(steps=3, progress=False).state_dict()
    b = train(steps=3, progress=False).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["decoder.net.convt0.weight"], make_mnist_vae().state_dict()["decoder.net.convt0.weight"])
