import pytest
import torch

from torchbend.apps.input_spec import InputSpecError, parse_inputs, parse_shape


def test_factories_numbers_and_files(tmp_path):
    torch.save(torch.arange(6.0).reshape(2, 3), tmp_path / "x.pt")
    inputs = parse_inputs(["z=randn(4, 8); t=0.5", f"x={tmp_path / 'x.pt'}", "w=linspace(0,1,5)", "o=ones(2)"])
    assert list(inputs) == ["z", "t", "x", "w", "o"]
    assert inputs["z"].shape == (4, 8) and inputs["t"].item() == 0.5 and inputs["x"][1, 2] == 5
    assert inputs["w"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0] and inputs["o"].tolist() == [1.0, 1.0]


def test_the_seed_draws_the_random_values():
    assert torch.equal(parse_inputs(["z=randn(3)"], seed=1)["z"], parse_inputs(["z=randn(3)"], seed=1)["z"])
    assert not torch.equal(parse_inputs(["z=randn(3)"], seed=1)["z"], parse_inputs(["z=randn(3)"], seed=2)["z"])


@pytest.mark.parametrize(
    "item, message",
    [
        ("z", "NAME=VALUE"),
        ("z=randm(2)", "unknown function 'randm'"),
        ("z=rand(a)", "must be numbers"),
        ("z=nope.pt", "no such file"),
        ("z=1;z=2", "given twice"),
        ("z=hello", "expected randn"),
    ],
)
def test_mistakes_are_named(item, message):
    with pytest.raises(InputSpecError, match=message):
        parse_inputs([item])


@pytest.mark.parametrize(
    "item, message",
    [
        ("z=randn(100000,100000)", "too large; one input holds at most 268435456 numbers"),
        ("z=linspace(0,1,1e12)", "too large"),
        ("z=randn(1e300,1e300)", "too large"),
        ("z=randn(-1,64)", "a size is a whole number >= 0, got -1"),
        ("z=zeros(2.5)", "got 2.5"),
        ("z=ones(nan)", "got nan"),
        ("z=rand(1e400)", "got inf"),
        ("z=linspace(0,1,-3)", "got -3"),
    ],
)
def test_sizes_are_whole_and_bounded_before_allocating(item, message):
    with pytest.raises(InputSpecError, match=message):
        parse_inputs([item])


def test_parse_shape_checks_like_the_factories():
    assert parse_shape("16, 64") == (16, 64)
    with pytest.raises(InputSpecError, match="'--shape 16,abc': the arguments must be numbers"):
        parse_shape("16,abc")
    with pytest.raises(InputSpecError, match="too large"):
        parse_shape("100000,100000")
