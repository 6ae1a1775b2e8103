import logging
import threading
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
    caplog.set_level(logging.WARNING, logger="torchbend.apps.control.osc")
    with tb.control.osc(bended, port=0) as server:
        client = SimpleUDPClient("127.0.0.1", server.port)
        client.send_message("/torchbend/nope", 1.0)  # unknown parameter
        client.send_message("/other/gain", 1.0)  # not our address
        client.send_message("/torchbend/gain", 9.0)  # out of range
        client.send_message("/torchbend/gain", "loud")  # not a number
        client.send_message("/torchbend/steps", 2.5)  # not an int
        client.send_message("/torchbend/gain", 3.0)  # still served after all that
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


def stopped_within(server, timeout=5.0):
    """Whether `server.stop()` returned within `timeout` seconds (run on a helper thread, so a hang fails)."""
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    stopper.join(timeout)
    return not stopper.is_alive()


def test_a_bundle_dated_far_ahead_applies_now_and_holds_nothing_up(bended):
    from pythonosc.osc_bundle_builder import OscBundleBuilder
    from pythonosc.osc_message_builder import OscMessageBuilder

    message = OscMessageBuilder("/torchbend/gain")
    message.add_arg(2.0)
    bundle = OscBundleBuilder(time.time() + 365 * 24 * 3600)  # a year ahead
    bundle.add_content(message.build())
    server = tb.control.osc(bended, port=0)
    try:
        client = SimpleUDPClient("127.0.0.1", server.port)
        client.send(bundle.build())
        client.send_message("/torchbend/steps", 5)  # must not wait a year behind the bundle
        wait_until(lambda: bended.controllables["steps"].value == 5)
        assert bended.controllables["gain"].value == 2.0 and server.received == 2
    finally:
        assert stopped_within(server)
    assert not server.running


def test_stop_returns_while_a_message_is_still_being_applied(bended, monkeypatch, caplog):
    entered, release = threading.Event(), threading.Event()

    def slow_update(name, value):
        entered.set()
        release.wait(30)

    monkeypatch.setattr(bended, "update", slow_update)
    server = tb.control.osc(bended, port=0)
    try:
        SimpleUDPClient("127.0.0.1", server.port).send_message("/torchbend/gain", 2.0)
        assert entered.wait(10)
        assert stopped_within(server)
        assert "stopped while a message was being applied" in caplog.text
    finally:
        release.set()
    server._thread.join(10)
    assert not server.running


def test_logged_addresses_and_values_escape_control_characters(bended, caplog):
    caplog.set_level(logging.WARNING, logger="torchbend.apps.control.osc")
    with tb.control.osc(bended, port=0) as server:
        client = SimpleUDPClient("127.0.0.1", server.port)
        client.send_message("/other\nWARNING forged line", 1.0)
        client.send_message("/torchbend/gain\r\x1b[2J", 1.0)
        client.send_message("/torchbend/gain", "a\nb")
        wait_until(lambda: server.received == 3)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3
    assert not any(c in m for m in messages for c in "\n\r\x1b")
    assert "/other\\nWARNING forged line" in messages[0] and "\\x1b[2J" in messages[1]


def test_a_packet_that_cannot_be_read_is_one_log_line(bended, caplog, capfd):
    import socket
    import struct

    caplog.set_level(logging.WARNING, logger="torchbend.apps.control.osc")
    packet = b"/torchbend/gain\0,f\0\0" + struct.pack(">f", 2.0)
    for _ in range(2000):  # bundles nested deeper than python-osc's parser can recurse
        packet = b"#bundle\0" + struct.pack(">Qi", 1, len(packet)) + packet
    with tb.control.osc(bended, port=0) as server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(packet, ("127.0.0.1", server.port))
        wait_until(lambda: "ignored: RecursionError" in caplog.text)
        SimpleUDPClient("127.0.0.1", server.port).send_message("/torchbend/gain", 3.0)
        wait_until(lambda: bended.controllables["gain"].value == 3.0)
    assert "Traceback" not in capfd.readouterr().err
