"""One argument checker: a live parameter is held to what the callback accepts when made, at every change."""

import inspect

import pytest

import torchbend as tb
from torchbend.config import registered_callbacks

CANDIDATES = (-1e9, -2, -1, -0.5, 0, 0.25, 0.5, 1, 1.5, 2, 3, 4, 5, 1e9)
GIVEN = {"Invert": {"lo": 0.0, "hi": 1.0}}  # arguments that have no number for a default


def numeric_controls():
    for name, cls in sorted(registered_callbacks().items()):
        if not inspect.isclass(cls):
            continue
        defaults = {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()}
        defaults.update(GIVEN.get(name, {}))
        for control in getattr(cls, "controls", None) or ():
            value = defaults.get(control)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                yield pytest.param(cls, control, defaults, id=f"{name}.{control}")


def accepts(make):
    try:
        make()
    except (TypeError, ValueError):
        return False
    return True


@pytest.mark.parametrize("cls,control,defaults", list(numeric_controls()))
def test_live_changes_are_checked_as_construction_is(cls, control, defaults):
    others = {k: v for k, v in GIVEN.get(cls.__name__, {}).items() if k != control}
    start = defaults[control]
    parameter = tb.BendingParameter(control, start)
    callback = cls(**{control: parameter}, **others)
    refused = []
    for candidate in CANDIDATES:
        if parameter.type is int and not float(candidate).is_integer():
            continue
        plain_ok = accepts(lambda c=candidate: cls(**{control: c}, **others))
        live_ok = accepts(lambda c=candidate: parameter.set(c))
        assert plain_ok == live_ok, (
            f"{cls.__name__}({control}={candidate}) is {'accepted' if plain_ok else 'refused'}"
            f" when made, but a live change to it is {'accepted' if live_ok else 'refused'}"
        )
        if not live_ok:
            refused.append(candidate)
            assert parameter.value != candidate
        parameter.set(start)
    del callback  # kept alive until here: its checks last as long as it does


def test_a_live_value_needs_a_callback_as_owner():
    with pytest.raises(TypeError, match="pass the callback itself as the owner"):
        tb.check_number("Clip", "limit", tb.BendingParameter("limit", 1.0), low=0)
    assert tb.check_number("Clip", "limit", 1.0, low=0) == 1.0


def test_some_live_changes_are_refused():
    """The parametrised test above compares both ways; here, that refusals do happen, with the callback's words."""
    sigma = tb.BendingParameter("sigma", 1.0)
    blur = tb.Blur(sigma)
    with pytest.raises(ValueError, match="Blur: sigma must be >= 0, got -1"):
        sigma.set(-1.0)
    assert sigma.value == 1.0
    k = tb.BendingParameter("k", 3)
    erode = tb.Erode(k)
    with pytest.raises(ValueError, match="k must be odd"):
        k.set(4)
    levels = tb.BendingParameter("levels", 4)
    quantize = tb.Quantize(levels)
    with pytest.raises(ValueError, match="Quantize: levels"):
        levels.set(1)
    assert (blur, erode, quantize) and k.value == 3 and levels.value == 4


def test_expressions_and_relations_are_rechecked():
    p = tb.BendingParameter("p", 0.25)
    mask = tb.Mask(prob=2 * p)
    with pytest.raises(ValueError, match="Mask: prob"):
        p.set(0.75)  # 2 * 0.75 is outside [0, 1]
    lo = tb.BendingParameter("lo", -1.0)
    clamp = tb.Clamp(lo, 1.0)
    with pytest.raises(ValueError, match="lo must be <= hi"):
        lo.set(2.0)
    assert p.value == 0.25 and lo.value == -1.0 and (mask, clamp)


def test_checks_end_with_the_callback():
    p = tb.BendingParameter("prob", 0.5)
    tb.Mask(prob=p)  # not kept
    import gc

    gc.collect()
    p.set(5.0)  # no callback holds it to [0, 1] any more
    assert p.value == 5.0
