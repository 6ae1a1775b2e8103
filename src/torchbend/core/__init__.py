"""The bending core, written once for every kind of model (private: the public face is `BendedModule`).

Layers, each depending only on those above it:

- `targets`: names and patterns resolved to weights and traced activations;
- `bends`: the bend set (bends made, their plans, their parameters' subscriptions);
- `snapshot`: one immutable state a call runs on, with its runners and the programs they use;
- `engine`: the owner of all of it, and the lock around every change;
- `calls`: how a bended call is dispatched (plain, re-traced, per-example, with run-time keywords).
"""
