import pytest
import torch

import torchbend as tb


def test_type_follows_initial_value_and_values_are_checked():
    f = tb.BendingParameter("f", 0.5, range=(0.0, 1.0))
    i = tb.BendingParameter("i", 3)
    b = tb.BendingParameter("b", True)
    assert (f.type, i.type, b.type) == (float, int, bool)
    f.value = 1
    assert f.value == 1.0 and isinstance(f.value, float)
    i.value = 4.0
    assert i.value == 4 and isinstance(i.value, int)
    b.value = 0
    assert b.value is False
    with pytest.raises(ValueError, match="outside its range"):
        f.value = 1.5
    with pytest.raises(ValueError, match="int"):
        i.value = 2.5
    with pytest.raises(ValueError, match="bool"):
        b.value = 2
    with pytest.raises(ValueError, match="outside its range"):
        tb.BendingParameter("g", 2.0, range=(0.0, 1.0))
    with pytest.raises(ValueError, match="identifier"):
        tb.BendingParameter("not a name", 1.0)
    assert tb.BendingParameter("t", torch.tensor(0.25)).value == 0.25


def test_arithmetic_follows_its_sources():
    p = tb.BendingParameter("p", 2.0)
    q = tb.BendingParameter("q", 3.0)
    exprs = {"2*p": 2 * p, "p+1": p + 1, "-p": -p, "p*q": p * q, "1/p": 1 / p, "p-q": p - q}
    assert {k: float(v) for k, v in exprs.items()} == {
        "2*p": 4.0,
        "p+1": 3.0,
        "-p": -2.0,
        "p*q": 6.0,
        "1/p": 0.5,
        "p-q": -1.0,
    }
    p.value = 4.0
    assert float(exprs["2*p"]) == 8.0 and float(exprs["p*q"]) == 12.0
    assert list(exprs["p*q"].sources()) == [p, q]
    with pytest.raises(TypeError, match="combine"):
        p + "x"


def test_listeners_hear_changes_only():
    p = tb.BendingParameter("p", 1.0)
    heard = []
    p.subscribe(heard.append)
    p.value = 1.0
    p.value = 2.0
    assert heard == [p]
    p.unsubscribe(heard.append)
    p.value = 3.0
    assert heard == [p]


def test_reference_spellings_set_value_and_get_value():
    p = tb.BendingParameter("keep", 0.2, range=(0.0, 1.0))
    heard = []
    p.subscribe(heard.append)
    p.set_value(0.7)
    assert p.get_value() == 0.7 and p.value == 0.7 and heard == [p]
    with pytest.raises(ValueError, match="outside its range"):
        p.set_value(2.0)
    assert p.get_value() == 0.7


def test_names_equal_after_nfkc_are_one_name(vae, z):
    assert tb.BendingParameter("\ufb01lter", 1.0).name == "filter"  # "ﬁlter": Python reads it as "filter"
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    bended.bend(tb.Scale(tb.BendingParameter("\ufb01", 2.0)), "decoder_net_convt0")
    with pytest.raises(tb.BendingError, match="another bending parameter named 'fi'"):
        bended.bend(tb.Bias(tb.BendingParameter("fi", 0.5)), "decoder_net_convt1")
    bended.update("\ufb01", 3.0)
    assert bended.controllables["fi"].value == 3.0
