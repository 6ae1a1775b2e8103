"""A call that does not fit its trace says which argument and what was traced."""

import pytest
import torch

import torchbend as tb
from torchbend.zoo import load_mnist_vae


@pytest.fixture(scope="module")
def bended():
    bended = tb.BendedModule(load_mnist_vae())
    bended.trace("decode", z=torch.randn(16, 64))
    return bended


def test_an_input_of_another_shape_names_the_argument_and_both_shapes(bended):
    with pytest.raises(tb.SpecializationError) as error:
        bended.decode(torch.randn(16, 32))
    message = str(error.value)
    assert "z has shape (16, 32), but decode was traced with z of shape (16, 64)" in message
    assert "retrace=True" in message and "mat1 and mat2" in message  # the cause is kept, in the same line
    assert bended.decode(torch.randn(3, 64)).shape == (3, 1, 28, 28)  # another batch is not an error


def test_an_unexpected_keyword_is_named_with_the_missing_argument(bended):
    with pytest.raises(TypeError) as error:
        bended.decode(x=torch.randn(16, 64))
    assert "unexpected keyword argument 'x'" in str(error.value) and "missing 'z'" in str(error.value)
