import threading
import time

import pytest
import torch
from torch import nn

import torchbend as tb
from torchbend.apps.control import LFO, Ramp, drive, fit_to_parameter, offline, set_at


def wait_until(condition, timeout=10.0):
    """Poll `condition` until true; fails (not a timing assertion) only if it never becomes true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition never became true")
        time.sleep(0.005)


def scaled_linear():
    torch.manual_seed(0)
    bended = tb.BendedModule(nn.Sequential(nn.Linear(4, 3)))
    bended.trace("forward", torch.zeros(2, 4))
    gain = tb.BendingParameter("gain", 1.0, range=(0.0, 2.0))
    bended.bend(tb.Scale(gain), "_0", fn="forward")
    return bended, gain


def test_fit_to_parameter_clamps_rounds_and_thresholds():
    f = tb.BendingParameter("f", 0.5, range=(0.0, 1.0))
    i = tb.BendingParameter("i", 3, range=(0, 10))
    b = tb.BendingParameter("b", False)
    assert fit_to_parameter(f, 7.0) == 1.0 and fit_to_parameter(f, -1.0) == 0.0
    assert fit_to_parameter(i, 4.6) == 5 and fit_to_parameter(i, 99) == 10
    assert fit_to_parameter(b, 0.7) is True and fit_to_parameter(b, 0.2) is False
    with pytest.raises(ValueError, match="NaN"):
        fit_to_parameter(f, float("nan"))


def test_offline_sets_each_chunk_from_the_sample_clock():
    bended, gain = scaled_linear()
    x = torch.randn(2, 4)
    plain = bended.module(x)
    seen = []
    for t in offline(bended, {"gain": Ramp(0.0, 4.0, 1.0)}, duration=1.0, step=0.25):
        seen.append((t, gain.value))
        torch.testing.assert_close(bended(x), plain * min(4.0 * t, 2.0))
    assert seen == [(0.0, 0.0), (0.25, 1.0), (0.5, 2.0), (0.75, 2.0)]  # clamped to the range
    assert set_at(bended, {"gain": LFO(1.0, "saw", depth=1.0, offset=1.0)}, 0.25) == {"gain": 0.5}


def test_unknown_parameter_fails_at_once():
    bended, _ = scaled_linear()
    with pytest.raises(tb.UnknownNameError, match="gain"):
        drive(bended, "gian", LFO(1.0))
    with pytest.raises(tb.UnknownNameError):
        list(offline(bended, {"gian": LFO(1.0)}, duration=1.0, step=0.5))


def test_driver_thread_while_another_thread_calls_the_model():
    """Every call sees one value of the driven parameter: the output is the plain output times 0 or 2."""
    bended, gain = scaled_linear()
    x = torch.randn(2, 4)
    plain = bended.module(x).detach()
    square = LFO(40.0, "square", depth=1.0, offset=1.0)  # 0 or 2, switching every 12.5 ms
    outputs, errors = [], []

    def call_many():
        try:
            for _ in range(300):
                outputs.append(bended(x).detach())
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    with drive(bended, "gain", square, rate=500) as driver:
        wait_until(lambda: driver.updates > 0)
        caller = threading.Thread(target=call_many)
        caller.start()
        caller.join()
    assert not errors
    assert not driver.running
    for out in outputs:
        assert torch.equal(out, plain * 0.0) or torch.allclose(out, plain * 2.0)
    assert gain.value in (0.0, 2.0)


def test_driver_keeps_running_when_its_bend_goes_away(caplog):
    bended, gain = scaled_linear()
    driver = drive(bended, "gain", Ramp(0.5, 0.5, 1.0), rate=200)
    wait_until(lambda: gain.value == 0.5)
    bended.reset()
    wait_until(lambda: "drive 'gain'" in caplog.text)
    assert driver.running
    driver.stop()
    assert not driver.running


@pytest.mark.parametrize("rate", [0, -1, float("nan"), float("inf"), 1e-300, 1e9])
def test_a_rate_that_would_spin_or_overflow_is_refused(rate):
    bended, _ = scaled_linear()
    with pytest.raises(ValueError, match="rate is in updates per second"):
        drive(bended, "gain", LFO(1.0), rate=rate)


@pytest.mark.parametrize(
    "duration, step, message",
    [(1.0, float("nan"), "step"), (1.0, 0, "step"), (float("inf"), 0.5, "duration"), (float("nan"), 0.5, "duration")],
)
def test_offline_times_must_be_finite(duration, step, message):
    bended, _ = scaled_linear()
    with pytest.raises(ValueError, match=f"{message} is in seconds"):
        list(offline(bended, {"gain": LFO(1.0)}, duration=duration, step=step))
