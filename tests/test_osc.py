import logging
import time

import pytest
from torch import nn

import torchbend as tb

pytest.importorskip("pythonosc")
from pythonosc.udp_client import SimpleUDPClient  # noqa: E402


def wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition never became true")
        time.sleep(0.005)


@pytest.fixture
def bended():
    bended = tb.BendedModule(nn.Linear(3, 2))
    bended.bend(tb.Scale(tb.BendingParameter("gain", 1.0, range=(0.0, 4.0))), "weight")
    bended.bend(tb.Mask(tb.BendingParameter("steps", 2, range=(0, 8)) / 8, seed=0), "bias")
    return bended


def test_messages_set_parameters(bended):
    with tb.control.osc(bended, port=0) as server:
        assert server.port > 0 and server.host == "127.0.0.1"
        client = SimpleUDPClient("127.0.0.1", server.port)
        client.send_message("/torchbend/gain", 2.5)
        client.send_message("/torchbend/steps", 5)
        wait_until(lambda: bended.controllables["steps"].value == 5)
        assert bended.controllables["gain"].value == 2.5
    assert not server.running


def test_bad_messages_are_logged_and_ignored(bended, caplog):
    caplog.set_level(logging.WARNING, logger="torchbend.control.osc")
    with tb.control.osc(bended, port=0) as server:
        client = SimpleUDPClient("127.0.0.1", server.port)
        client.send_message("/torchbend/nope", 1.0)         # unknown parameter
        client.send_message("/other/gain", 1.0)             # not our address
        client.send_message("/torchbend/gain", 9.0)         # out of range
        client.send_message("/torchbend/gain", "loud")      # not a number
        client.send_message("/torchbend/steps", 2.5)        # not an int
        client.send_message("/torchbend/gain", 3.0)         # still served after all that
        wait_until(lambda: bended.controllables["gain"].value == 3.0)
        assert server.running and server.received == 6
    assert bended.controllables["steps"].value == 2
    text = caplog.text
    for expected in ("nope", "/other/gain", "outside its range", "expected one number", "is an int"):
        assert expected in text


def test_the_last_of_a_burst_wins(bended):
    values = [0.5 + 0.25 * (i % 3) for i in range(99)] + [0.375]  # exact in OSC's float32; not the start value
    with tb.control.osc(bended, port=0) as server:
        client = SimpleUDPClient("127.0.0.1", server.port)
        for v in values:
            client.send_message("/torchbend/gain", v)
        wait_until(lambda: bended.controllables["gain"].value == values[-1])
    assert server.last["gain"] == values[-1]
