"""Sources of parameter values: modulators, drivers, OSC and MIDI.

>>> import torchbend as tb
>>> tb.control.drive(bended, "gain", tb.LFO(1.0), rate=100)
>>> tb.control.osc(bended, port=9000)
>>> tb.control.midi(bended, {1: "gain"})
"""

from .drive import Driver, drive, fit_to_parameter, offline, set_at
from .midi import MIDIMapping, midi
from .modulators import LFO, Envelope, Modulator, Ramp, modulation_at
from .osc import OSCServer, osc

__all__ = [
    "Driver",
    "Envelope",
    "LFO",
    "MIDIMapping",
    "Modulator",
    "OSCServer",
    "Ramp",
    "drive",
    "fit_to_parameter",
    "midi",
    "modulation_at",
    "offline",
    "osc",
    "set_at",
]
