import pytest

from torchbend.errors import UnknownNameError
from torchbend.naming import closest_names, match_names, split_method

NAMES = [
    "decoder.net.convt0.weight",
    "decoder.net.convt0.bias",
    "decoder.net.convt1.weight",
    "decoder.net.convt10.weight",
]


def test_exact_name_first_then_full_match_regex_in_order_without_duplicates():
    assert match_names(["decoder.net.convt1.weight"], NAMES, "weight") == ["decoder.net.convt1.weight"]
    # a regex must match the whole name: convt1 does not reach convt10
    assert match_names([r"decoder\.net\.convt1\..*"], NAMES, "weight") == ["decoder.net.convt1.weight"]
    assert match_names([r".*weight", r".*convt0.*"], NAMES, "weight") == NAMES


def test_unknown_names_list_the_closest():
    with pytest.raises(UnknownNameError) as err:
        match_names(["decoder.net.convt0.wieght"], NAMES, "weight")
    assert "closest: decoder.net.convt0.weight" in str(err.value)
    with pytest.raises(UnknownNameError, match="there are no weights"):
        match_names(["x"], [], "weight")
    with pytest.raises(UnknownNameError):
        match_names(["(unbalanced"], NAMES, "weight")
    assert closest_names("zzz", NAMES, n=2) == NAMES[:2]


def test_method_qualifier():
    assert split_method("decode:decoder_net_convt0") == ("decode", "decoder_net_convt0")
    assert split_method("decoder_net_convt0") == (None, "decoder_net_convt0")
    assert split_method("(?:a|b)") == (None, "(?:a|b)")
