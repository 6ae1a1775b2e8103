import math

import pytest
import torch

import torchbend as tb
from torchbend.apps.control import LFO, Envelope, Ramp, modulation_at


@pytest.mark.parametrize("t", [0.0, 0.1, 0.37, 1.25, 3.9])
def test_lfo_shapes_follow_their_closed_forms(t):
    rate = 0.8
    cycle = (rate * t) % 1.0
    assert LFO(rate, "sine").at(t) == pytest.approx(math.sin(2 * math.pi * rate * t))
    assert LFO(rate, "saw").at(t) == pytest.approx(2 * cycle - 1)
    assert LFO(rate, "square").at(t) == (1.0 if cycle < 0.5 else -1.0)
    # the triangle is the arcsine of the sine, rescaled: same zero crossings and peaks
    triangle = 2 / math.pi * math.asin(math.sin(2 * math.pi * rate * t))
    assert LFO(rate, "triangle").at(t) == pytest.approx(triangle)


def test_lfo_depth_offset_and_phase():
    lfo = LFO(2.0, "sine", depth=0.25, offset=0.5, phase=0.25)
    assert lfo.at(0.0) == pytest.approx(0.75)  # a quarter cycle in: the top
    assert lfo.at(0.25) == pytest.approx(0.25)  # half a period later: the bottom
    assert 0.25 - 1e-9 <= lfo.value <= 0.75 + 1e-9  # wall clock: somewhere in its swing


def test_ramp_curves():
    assert Ramp(2.0, 4.0, 2.0).at(0.5) == pytest.approx(2.5)
    assert Ramp(2.0, 4.0, 2.0).at(-1.0) == 2.0
    assert Ramp(2.0, 4.0, 2.0).at(10.0) == 4.0
    assert Ramp(1.0, 100.0, 2.0, curve="exponential").at(1.0) == pytest.approx(10.0)
    x = 0.25
    assert Ramp(0.0, 1.0, 4.0, curve="smooth").at(1.0) == pytest.approx(x * x * (3 - 2 * x))
    assert Ramp(0.0, 1.0, 0.0).at(0.0) == 1.0


def test_envelope_segments():
    env = Envelope(attack=0.1, decay=0.2, sustain=0.5, release=0.4, peak=2.0, low=1.0)
    assert env.at(-0.5) == 1.0  # before the gate
    assert env.at(0.05) == pytest.approx(1.5)  # half-way up the attack
    assert env.at(0.1) == pytest.approx(2.0)  # peak
    assert env.at(0.2) == pytest.approx(1.75)  # half-way down the decay
    assert env.at(5.0) == pytest.approx(1.5)  # sustain
    assert env.at(5.2, gate_off_at=5.0) == pytest.approx(1.25)  # half-way down the release
    assert env.at(6.0, gate_off_at=5.0) == 1.0
    # released during the attack: the release starts from where the attack was
    assert env.at(0.25, gate_off_at=0.05) == pytest.approx(1.0 + 0.5 * (1 - 0.2 / 0.4))


def test_envelope_wall_clock_gate():
    env = Envelope(attack=0.0, decay=0.0, sustain=0.6, release=1000.0)
    assert env.value == 0.0
    env.gate_on()
    assert env.value == pytest.approx(0.6)
    env.gate_off()
    assert 0.0 < env.value <= 0.6


def test_modulators_compose_like_parameters():
    lfo = LFO(1.0, "saw")
    ramp = Ramp(0.0, 10.0, 10.0)
    expr = 2 * lfo + ramp
    assert modulation_at(expr, 0.25) == pytest.approx(2 * (2 * 0.25 - 1) + 0.25)
    gain = tb.BendingParameter("gain", 3.0)
    assert modulation_at(lfo * gain, 0.75) == pytest.approx(0.5 * 3.0)
    assert isinstance(float(expr), float)


def test_modulator_drives_a_callback_directly():
    """A modulator is a live value: a callback reads its current value at each call."""
    ramp = Ramp(3.0, 3.0, 1.0)
    bended = tb.BendedModule(torch.nn.Linear(2, 2))
    bended.bend(tb.Scale(ramp), "weight")
    x = torch.ones(1, 2)
    expected = torch.nn.functional.linear(x, bended.module.weight * 3.0, bended.module.bias)
    torch.testing.assert_close(bended(x), expected)


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="choose one of sine, triangle, square, saw"):
        LFO(1.0, "sinus")
    with pytest.raises(ValueError, match="rate_hz must be > 0"):
        LFO(0.0)
    with pytest.raises(ValueError, match="same sign"):
        Ramp(0.0, 1.0, 1.0, curve="exponential")
    with pytest.raises(ValueError, match="sustain"):
        Envelope(0.1, 0.1, 1.5, 0.1)
