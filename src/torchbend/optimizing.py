"""Learn a bend by gradient: `optimize` moves the `tb.Trainable` values of a bended module to lower a loss.

    >>> gain = tb.Trainable(1.0, shape=(32, 1, 1))
    >>> bended.bend(tb.Scale(gain), "decode:decoder_net_convt1")
    >>> run = tb.optimize(bended, "decode", {"z": z}, lambda img: -img.mean(), steps=50, lr=0.05)
    >>> run.history[0] > run.history[-1]
    True

Only the trainables move: gradients are taken with `torch.autograd.grad` with respect to them alone, so the
wrapped model's own parameters get no gradient (their ``.grad`` stays None) and are never written. The best
values seen are kept at the end, and when the loop is stopped early (Ctrl-C, `Optimization.stop`). With
``thread=True`` the loop runs in its own thread and `optimize` returns at once: read ``run.history`` while it
runs (the studio can plot it), call ``run.stop()`` or ``run.join()``. Other threads may call the bended
module meanwhile: they see each trainable whole, before or after a step.

Regularisers are plain functions of the trainables' learned tensors (a list), returning a number to add to the
loss: `l1` (sparse gains and masks), `norm_bound` (a steering vector that stays small), or your own.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .bending.trainable import Trainable, updating
from .errors import BendingError

Regulariser = Callable[[Sequence[torch.Tensor]], Any]  # a tensor (or a number) to add to the loss


def l1(weight: float = 1e-3) -> Regulariser:
    """``weight * sum |v|`` over every learned value: pushes most of them to zero (a sparse mask or gain).

    >>> tb.optimize(bended, "decode", {"z": z}, loss, regularizers=[tb.l1(1e-3)])
    """
    return lambda values: weight * sum(v.abs().sum() for v in values)


def norm_bound(max_norm: float, weight: float = 1.0) -> Regulariser:
    """``weight * sum max(0, ||v|| - max_norm)^2``: free below `max_norm`, a growing cost above it (keeps a
    steering vector from swamping the activation it is added to).

        >>> tb.optimize(bended, "forward", (ids,), loss, regularizers=[tb.norm_bound(4.0)])
    """
    return lambda values: weight * sum(torch.relu(v.norm() - max_norm) ** 2 for v in values)


class Optimization:
    """The handle `optimize` returns: the loss history, the best loss and step, and control of a running loop.

    >>> run = tb.optimize(bended, "decode", {"z": z}, loss, steps=500, thread=True)
    >>> run.history[-1]                                     # while it runs
    >>> run.stop(); run.join()
    """

    def __init__(self, params: list[Trainable], steps: int) -> None:
        self.params = params
        self.steps = steps
        self.history: list[float] = []  # the loss (with regularisers) at each step, before its update
        self.best_loss = math.inf
        self.best_step = -1
        self.interrupted = False  # stopped before `steps` (Ctrl-C or stop())
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Ask the loop to stop after the current step (the best values so far are kept)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> Optimization:
        """Wait for a threaded loop to end; re-raises an error it raised."""
        if self._thread is not None:
            self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped early" if self.interrupted else "done"
        last = f", loss {self.history[-1]:.4g}" if self.history else ""
        return f"Optimization({len(self.history)}/{self.steps} steps, {state}{last}, best {self.best_loss:.4g})"


def optimize(
    bended: Any,
    fn: str,
    inputs: Any,
    loss: Callable[[Any], torch.Tensor],
    steps: int = 100,
    lr: float = 1e-2,
    params: Sequence[Trainable] | None = None,
    optimizer: Any = None,
    regularizers: Sequence[Regulariser] = (),
    thread: bool = False,
    progress: bool = True,
    keep_best: bool = True,
) -> Optimization:
    """Lower ``loss(bended.<fn>(**inputs))`` by moving the trainables in `params` (default: every
    `tb.Trainable` the bends of `bended` read); returns an `Optimization`.

        >>> run = tb.optimize(bended, "decode", {"z": z}, lambda img: -img.mean(), steps=100, lr=0.05)

    `inputs` is a dict of keyword arguments, a tuple of positional ones, a single tensor, or a function of the
    step number returning one of these (a new batch each step). `optimizer` is None (Adam), a torch optimizer
    class (made with ``lr``), or a function of the list of tensors returning an optimizer. `regularizers` are
    functions of the list of learned tensors, added to the loss. ``progress`` shows a tqdm bar when tqdm is
    installed; ``keep_best`` puts the values of the lowest loss back at the end (else the last ones stay).
    """
    trainables = _params(bended, params)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"optimize: steps must be a positive int, got {steps!r}")
    if not callable(loss):
        raise TypeError(f"optimize: loss must be a function of the method's output, got {type(loss).__name__}")
    method = getattr(bended, fn)
    tensors: list[torch.Tensor] = [t.parameter for t in trainables]
    opt = _optimizer(optimizer, tensors, lr)
    run = Optimization(trainables, steps)

    def loop() -> None:
        bar = _bar(steps) if progress else None
        best = [t.detach().clone() for t in tensors]
        try:
            for step in range(steps):
                if run._stop.is_set():
                    run.interrupted = True
                    break
                args, kwargs = _call_inputs(inputs(step) if callable(inputs) else inputs)
                with torch.enable_grad():
                    total = _scalar(loss(method(*args, **kwargs)))
                    for regulariser in regularizers:
                        total = total + regulariser(tensors)
                    grads = torch.autograd.grad(total, tensors, allow_unused=True)
                _no_missing(grads, trainables, fn)
                value = float(total.detach())
                run.history.append(value)
                if value < run.best_loss:
                    run.best_loss, run.best_step = value, step
                    best = [t.detach().clone() for t in tensors]
                for tensor, grad in zip(tensors, grads):
                    tensor.grad = grad
                with updating(trainables):
                    opt.step()
                for tensor in tensors:
                    tensor.grad = None
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{value:.4g}")
        except KeyboardInterrupt:
            run.interrupted = True
        except BaseException as error:
            run.error = error
        finally:
            if bar is not None:
                bar.close()
            if keep_best and run.best_step >= 0:
                with updating(trainables), torch.no_grad():
                    for tensor, kept in zip(tensors, best):
                        tensor.copy_(kept)

    if thread:
        run._thread = threading.Thread(target=loop, name="torchbend-optimize", daemon=True)
        run._thread.start()
        return run
    loop()
    if run.error is not None:
        raise run.error
    return run


def _params(bended: Any, params: Sequence[Trainable] | None) -> list[Trainable]:
    found = {id(t): t for bend in bended.engine.bends for t in bend.callback.trainables()}
    if params is None:
        if not found:
            raise BendingError(
                "optimize: no bend of this module reads a tb.Trainable; bend with one first, e.g. "
                "bended.bend(tb.Scale(tb.Trainable(1.0)), name)"
            )
        return list(found.values())
    params = list(params)
    for t in params:
        if not isinstance(t, Trainable):
            raise TypeError(f"optimize: params are tb.Trainable values, got {type(t).__name__}")
        if id(t) not in found:
            raise BendingError(f"optimize: {t!r} is read by no bend of this module; bend with it first")
    if not params:
        raise ValueError("optimize: params is empty")
    return list({id(t): t for t in params}.values())


def _optimizer(optimizer: Any, tensors: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    if optimizer is None:
        return torch.optim.Adam(tensors, lr=lr)
    if isinstance(optimizer, torch.optim.Optimizer):
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        if not all(id(t) in held for t in tensors):
            raise ValueError(
                "optimize: the optimizer given does not hold the trainables' tensors; give a class "
                "(torch.optim.SGD) or a function of the tensors instead"
            )
        return optimizer
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return optimizer(tensors, lr=lr)  # type: ignore[call-arg]  # every torch optimizer takes lr
    if callable(optimizer):
        made = optimizer(tensors)
        if not isinstance(made, torch.optim.Optimizer):
            raise TypeError(f"optimize: optimizer(tensors) returned {type(made).__name__}, not a torch optimizer")
        return made
    raise TypeError(
        f"optimize: optimizer must be None, a torch optimizer class, an optimizer or a function of "
        f"the tensors, got {type(optimizer).__name__}"
    )


def _call_inputs(inputs: Any) -> tuple[tuple, dict]:
    if isinstance(inputs, dict):
        return (), inputs
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), {}
    return (inputs,), {}


def _scalar(value: Any) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        what = f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
        raise BendingError(f"optimize: loss must return a one-element tensor, got {what}; reduce it (e.g. .mean())")
    if not value.requires_grad:
        raise BendingError(
            "optimize: the loss does not depend on any trainable (no gradient reaches it); is the "
            "bend on the method optimised, and is the loss computed from its output?"
        )
    return value.reshape(())


def _no_missing(grads: Sequence[torch.Tensor | None], trainables: list[Trainable], fn: str) -> None:
    unused = [t for t, g in zip(trainables, grads) if g is None]
    if unused:
        raise BendingError(
            f"optimize: {', '.join(map(repr, unused))} does not affect the loss of {fn!r}: its bend "
            "is on another method, or on a value the output does not depend on"
        )


def _bar(steps: int) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=steps, desc="optimizing", unit="step", leave=False)
