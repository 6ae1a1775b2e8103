import pytest
import torch

from torchbend.input_spec import InputSpecError, parse_inputs


def test_factories_numbers_and_files(tmp_path):
    torch.save(torch.arange(6.0).reshape(2, 3), tmp_path / "x.pt")
    inputs = parse_inputs(["z=randn(4, 8); t=0.5", f"x={tmp_path / 'x.pt'}", "w=linspace(0,1,5)", "o=ones(2)"])
    assert list(inputs) == ["z", "t", "x", "w", "o"]
    assert inputs["z"].shape == (4, 8) and inputs["t"].item() == 0.5 and inputs["x"][1, 2] == 5
    assert inputs["w"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0] and inputs["o"].tolist() == [1.0, 1.0]


def test_the_seed_draws_the_random_values():
    assert torch.equal(parse_inputs(["z=randn(3)"], seed=1)["z"], parse_inputs(["z=randn(3)"], seed=1)["z"])
    assert not torch.equal(parse_inputs(["z=randn(3)"], seed=1)["z"], parse_inputs(["z=randn(3)"], seed=2)["z"])


@pytest.mark.parametrize("item, message", [("z", "NAME=VALUE"), ("z=randm(2)", "unknown function 'randm'"),
                                           ("z=rand(a)", "must be numbers"), ("z=nope.pt", "no such file"),
                                           ("z=1;z=2", "given twice"), ("z=hello", "expected randn")])
def test_mistakes_are_named(item, message):
    with pytest.raises(InputSpecError, match=message):
        parse_inputs([item])
