"""Grid sweeps: targets x callbacks x values x inputs, rendered in this process or over a Ray cluster.

    >>> points = tb.grid(["decoder_net_convt0", "decoder_net_convt1"], {"scale": tb.Scale, "bias": tb.Bias},
    ...                  values=torch.linspace(-1, 2, 4).tolist())                # 16 grid points
    >>> results = tb.run_grid(vae, "decode", {"z": z}, points, progress=False)   # here, batched
    >>> results[5].point.describe(), results[5].output.shape
    >>> # on Ray, written to disk with sweep/manifest.json:
    >>> # tb.run_grid(vae, "decode", {"z": z}, points, backend="ray", out_dir="sweep", save_as=".png")

Each grid point is one `BendingConfig`: the callback made from the value, on the target.
The local backend renders the points that differ only by value as one batched call
(`per_example` values); a callback that cannot take a live parameter, or a group that
fails, is rendered point by point. With ``backend="ray"``, the model is put in Ray's object
store once, each worker (an actor, one CPU) traces it once, and the points go to the
workers in chunks; results come back in point order, with a progress bar. The Ray cluster
connected with ``ray.init(address=...)`` is used when there is one, otherwise a local one
is started (and left running for the next sweep: ``ray.shutdown()`` stops it).

A point that fails (its callback refuses the value, the call raises) is reported with its
parameters in its result's `error` and in a warning; the others complete. With `out_dir`,
outputs are written as files (``.pt``, ``.png`` or ``.wav``; on a multi-machine cluster the
folder must be shared) instead of kept in memory, and ``manifest.json`` describes the grid
(method, suffix, model fingerprint, every point), a run id, and every finished point with its
file or error. It is rewritten atomically (a temporary file in the folder, then renamed) each
time results arrive, so a run killed midway leaves a manifest that matches the files written.
An `out_dir` that is not empty is refused unless ``overwrite=True`` (the files of the grid
there — those its manifest lists and those named like grid outputs, ``00012.png`` — are
deleted first; other files are left) or ``resume=True`` (the grid in its manifest, which must
be this grid, goes on: points already written are not rendered again, failed ones are).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import uuid
import warnings
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..bending.callback import BendingCallback
from ..bending.parameter import BendingParameter
from ..config import BendingConfig, fingerprint
from ..sweeping import outputs_for_values

VALUE = "grid_value"  # the name of the live parameter that batched renders give one value per item


@dataclass(frozen=True)
class GridPoint:
    """One render of a grid: `callback` (its name in the grid) made with `value`, bending `target`, on input set
    number `input`."""

    index: int
    target: str
    callback: str
    value: Any
    input: int = 0
    make: Callable[[Any], BendingCallback] | None = field(repr=False, compare=False, default=None)

    @property
    def config(self) -> BendingConfig:
        assert self.make is not None  # points are made by `grid_points`, with their callback maker
        return BendingConfig((self.make(self.value), self.target))

    def describe(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "target": self.target,
            "callback": self.callback,
            "value": self.value,
            "input": self.input,
        }


@dataclass
class GridResult:
    """What one grid point gave: its `output` (None when written to `path`), or the `error` that stopped it."""

    point: GridPoint
    output: Any = None
    path: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def grid(
    targets: Sequence[str] | str,
    callbacks: Mapping[str, Callable[[Any], BendingCallback]],
    values: Sequence[Any],
    inputs: int = 1,
) -> list[GridPoint]:
    """Every combination of `targets` x `callbacks` (name -> class or function of one value) x `values` x input
    set numbers ``range(inputs)``, numbered in that order. Each callback is made once per value here, so a
    value it refuses raises now, naming the point."""
    targets = [targets] if isinstance(targets, str) else list(targets)
    if not targets or not callbacks or not len(values):
        raise ValueError("grid needs at least one target, one callback and one value")
    points: list[GridPoint] = []
    for target in targets:
        for name, make in callbacks.items():
            if not callable(make):
                raise TypeError(f"callbacks[{name!r}] must be a callback class or a function of the value")
            for value in values:
                try:
                    made = make(value)
                except Exception as error:
                    raise ValueError(f"callbacks[{name!r}]({value!r}) fails: {error}") from error
                if not isinstance(made, BendingCallback):
                    raise TypeError(f"callbacks[{name!r}]({value!r}) gave {type(made).__name__}, not a callback")
                for i in range(int(inputs)):
                    points.append(GridPoint(len(points), target, name, value, i, make))
    return points


class Renderer:
    """Renders grid points on one copy of the model (a local renderer, or one Ray actor)."""

    def __init__(
        self,
        model: nn.Module,
        fn: str,
        inputs: Sequence[dict[str, Any]],
        out_dir: str | None = None,
        save_as: str = ".pt",
        sample_rate: int = 44100,
        batch: int = 64,
        threads: int | None = None,
        base: BendingConfig | None = None,
    ) -> None:
        from ..bended import BendedModule

        if threads:
            torch.set_num_threads(threads)
        self.bended = BendedModule(model)
        self.bended.trace(fn, **inputs[0])
        if base is not None and len(base):
            self.bended.bend(base)
        self.fn = fn
        self.method = getattr(self.bended, fn)
        self.inputs = list(inputs)
        self.out_dir, self.save_as, self.sample_rate, self.batch = out_dir, save_as, sample_rate, max(1, int(batch))

    def run(self, points: Sequence[GridPoint]) -> list[GridResult]:
        """The results of `points`, in their order."""
        results: dict[int, GridResult] = {}
        groups: dict[tuple, list[GridPoint]] = {}
        for p in points:
            groups.setdefault((p.target, p.callback, p.input), []).append(p)
        for group in groups.values():
            for start in range(0, len(group), self.batch):
                chunk = group[start : start + self.batch]
                batched = self._batched(chunk) if len(chunk) > 1 else None
                for p in chunk:
                    results[p.index] = batched[p.index] if batched is not None else self._single(p)
        return [results[p.index] for p in points]

    def _batched(self, chunk: list[GridPoint]) -> dict[int, GridResult] | None:
        """The chunk as one call with one value per item; None when that cannot be done."""
        first = chunk[0]
        inputs = self.inputs[first.input]
        try:
            assert first.make is not None
            callback = first.make(BendingParameter(VALUE, first.value))
            with self.bended.bend(callback, first.target):
                outputs = outputs_for_values(
                    self.bended, self.fn, inputs, VALUE, [p.value for p in chunk], batch=len(chunk)
                )
        except Exception:
            return None  # each point alone, so that one failing point is reported alone
        return {p.index: self._result(p, out) for p, out in zip(chunk, outputs)}

    def _single(self, point: GridPoint) -> GridResult:
        try:
            with self.bended.bend(point.config), torch.no_grad():
                out = self.method(**self.inputs[point.input])
            return self._result(point, out)
        except Exception as error:
            return GridResult(point, error=f"{type(error).__name__}: {error}")

    def _result(self, point: GridPoint, output: Any) -> GridResult:
        if self.out_dir is None:
            return GridResult(point, output=output)
        from .outputs import save_output

        try:
            path = save_output(output, Path(self.out_dir) / f"{point.index:05d}{self.save_as}", self.sample_rate)
        except Exception as error:
            return GridResult(point, error=f"{type(error).__name__}: {error}")
        return GridResult(point, path=str(path))


MANIFEST = "manifest.json"


class GridManifest:
    """``out_dir/manifest.json`` of one grid: its definition (``fn``, ``save_as``, ``model``: the weights'
    fingerprint, ``grid``: every point), its ``run`` id, its finished ``points`` (each with its ``path`` or
    ``error``, in point order) and whether it is ``complete``; rewritten atomically by `write`.

        >>> manifest = GridManifest.open(Path("sweep"), definition, overwrite=False, resume=False)
        >>> manifest.done                  # indexes of the points already written (resume=True)
    """

    def __init__(self, out_dir: Path, definition: dict[str, Any], run: str, points: dict[int, dict]) -> None:
        self.out_dir, self.definition, self.run, self.points = out_dir, definition, run, points

    @classmethod
    def open(cls, out_dir: Path, definition: dict[str, Any], overwrite: bool, resume: bool) -> GridManifest:
        """The manifest of a new grid in `out_dir`, or of the one it resumes; refuses a folder holding other files
        unless asked to overwrite them or to resume."""
        if overwrite and resume:
            raise ValueError("give overwrite=True (start again) or resume=True (go on), not both")
        path = out_dir / MANIFEST
        try:
            old = json.loads(path.read_text()) if path.is_file() else None
        except ValueError:
            old = None  # not a manifest this can read: resume refuses it, overwrite replaces it
        if resume:
            if not isinstance(old, dict) or "grid" not in old or "run" not in old:
                raise ValueError(
                    f"cannot resume in {out_dir}: it holds no manifest.json of a grid written by this "
                    "version of torchbend; start again with overwrite=True"
                )
            changed = [k for k in definition if old.get(k) != definition[k]]
            if changed:
                raise ValueError(
                    f"cannot resume in {out_dir}: its manifest describes another grid (its "
                    f"{', '.join(changed)} differ); resume with the same grid, or overwrite=True"
                )
            points = {
                p["index"]: p
                for p in old.get("points", [])
                if isinstance(p.get("path"), str)
                and Path(p["path"]).name == p["path"]
                and (out_dir / p["path"]).is_file()
            }
            manifest = cls(out_dir, definition, old["run"], points)
        else:
            out_dir.mkdir(parents=True, exist_ok=True)
            if any(out_dir.iterdir()):
                if not overwrite:
                    raise ValueError(
                        f"out_dir {out_dir} is not empty; pass overwrite=True to replace the grid there, "
                        "resume=True to go on with it, or choose an empty folder"
                    )
                cls._remove_grid_files(out_dir, old)
            manifest = cls(out_dir, definition, uuid.uuid4().hex, {})
        manifest.write(complete=False)
        return manifest

    @staticmethod
    def _remove_grid_files(out_dir: Path, old: Any) -> None:
        """Delete the files of the grid in `out_dir`: those its manifest lists, those named like grid outputs, the
        manifest and its temporary files; anything else stays."""
        from .outputs import SUFFIXES

        listed = {p.get("path") for p in old.get("points", [])} if isinstance(old, dict) else set()
        pattern = re.compile(r"\d{5,}(" + "|".join(re.escape(s) for s in SUFFIXES) + r")|\.manifest-.*\.tmp")
        for entry in out_dir.iterdir():
            if entry.is_file() and (entry.name in listed or entry.name == MANIFEST or pattern.fullmatch(entry.name)):
                entry.unlink()

    @property
    def done(self) -> set[int]:
        return set(self.points)

    def record(self, results: Sequence[GridResult]) -> None:
        """Add finished points and rewrite the manifest."""
        for r in results:
            self.points[r.point.index] = {**r.point.describe(), "path": r.path and Path(r.path).name, "error": r.error}
        self.write(complete=False)

    def write(self, complete: bool) -> None:
        """Write the manifest to a temporary file in the folder, then rename it over ``manifest.json``: a reader
        (or a run killed midway) sees the old manifest or the new one, never half of one."""
        body = {
            "run": self.run,
            **self.definition,
            "complete": complete,
            "points": [self.points[i] for i in sorted(self.points)],
        }
        text = json.dumps(body, indent=1, default=str) + "\n"
        handle, temporary = tempfile.mkstemp(dir=self.out_dir, prefix=".manifest-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w") as file:
                file.write(text)
            os.replace(temporary, self.out_dir / MANIFEST)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _definition(model: nn.Module, fn: str, save_as: str, points: Sequence[GridPoint]) -> dict[str, Any]:
    """What a resumed grid must share with the manifest's: as JSON reads it back."""
    return json.loads(
        json.dumps(
            {"fn": fn, "save_as": save_as, "model": fingerprint(model), "grid": [p.describe() for p in points]},
            default=str,
        )
    )


def stream_grid(
    model: Any,
    fn: str,
    inputs: dict[str, Any] | Sequence[dict[str, Any]],
    points: Sequence[GridPoint],
    backend: str = "local",
    out_dir: str | Path | None = None,
    save_as: str = ".pt",
    sample_rate: int = 44100,
    workers: int | None = None,
    batch: int = 64,
    progress: bool = True,
    overwrite: bool = False,
    resume: bool = False,
) -> Iterator[GridResult]:
    """The results of `run_grid`, one by one, in point order, as they arrive."""
    from ..bended import BendedModule
    from .outputs import SUFFIXES

    input_sets = [inputs] if isinstance(inputs, Mapping) else list(inputs)
    if not input_sets or not all(isinstance(i, Mapping) for i in input_sets):
        raise TypeError("inputs is a dict of keyword arguments of the method, or a list of such dicts")
    bad = sorted({p.input for p in points if not 0 <= p.input < len(input_sets)})
    if bad:
        raise ValueError(f"grid points use input sets {bad}, but {len(input_sets)} were given")
    if save_as not in SUFFIXES:
        raise ValueError(f"save_as must be one of {', '.join(SUFFIXES)}, got {save_as!r}")
    if backend not in ("local", "ray"):
        raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}")
    base = None
    if isinstance(model, BendedModule):
        model, base = model.module, model.bending_config()
    if not isinstance(model, nn.Module):
        raise TypeError(f"run_grid takes an nn.Module or a BendedModule, got {type(model).__name__}")
    manifest = None
    if out_dir is not None:
        manifest = GridManifest.open(Path(out_dir), _definition(model, fn, save_as, points), overwrite, resume)
        out_dir = str(out_dir)
    elif overwrite or resume:
        raise ValueError("overwrite and resume are about the files of out_dir: give out_dir too")
    options = dict(out_dir=out_dir, save_as=save_as, sample_rate=sample_rate, batch=batch, base=base)
    return _stream(model, fn, input_sets, list(points), backend, options, workers, progress, manifest)


def _stream(
    model: nn.Module,
    fn: str,
    input_sets: list[dict],
    points: list[GridPoint],
    backend: str,
    options: dict,
    workers: int | None,
    progress: bool,
    manifest: GridManifest | None,
) -> Iterator[GridResult]:
    """What `stream_grid` returns once its arguments are checked (so bad ones raise at the call)."""
    chunks = _ray_chunks if backend == "ray" else _local_chunks
    bar = None
    if progress:
        try:
            from tqdm import tqdm
        except ImportError:  # no bar without tqdm (it comes with torchbend[ray] and torchbend[demo])
            tqdm = None
        bar = tqdm(total=len(points), desc=f"grid ({backend})", unit="point") if tqdm else None
    done = manifest.done if manifest is not None else set()
    kept = (
        {
            p.index: GridResult(p, path=str(manifest.out_dir / manifest.points[p.index]["path"]))
            for p in points
            if p.index in done
        }
        if manifest is not None
        else {}
    )

    def arrived() -> Generator[GridResult, None, None]:
        for results in chunks(model, fn, input_sets, [p for p in points if p.index not in done], options, workers):
            if manifest is not None:
                manifest.record(results)  # before any is yielded: every file written is in the manifest
            yield from results

    failed: list[GridResult] = []
    written: list[GridResult] = []
    fresh = arrived()
    try:
        for point in points:  # points written by an earlier run come back in their place
            result = kept[point.index] if point.index in kept else next(fresh)
            if not result.ok:
                failed.append(result)
            written.append(result)
            if bar is not None:
                bar.update()
            yield result
    finally:
        fresh.close()  # a consumer that stops early stops the workers too
        if bar is not None:
            bar.close()
    if manifest is not None:
        manifest.write(complete=True)
    if failed:
        listed = "; ".join(f"{r.point.describe()}: {r.error}" for r in failed[:5])
        warnings.warn(
            f"{len(failed)} of {len(written)} grid points failed: {listed}{' ...' if len(failed) > 5 else ''}",
            stacklevel=3,
        )


def run_grid(
    model: Any,
    fn: str,
    inputs: dict[str, Any] | Sequence[dict[str, Any]],
    points: Sequence[GridPoint],
    backend: str = "local",
    out_dir: str | Path | None = None,
    save_as: str = ".pt",
    sample_rate: int = 44100,
    workers: int | None = None,
    batch: int = 64,
    progress: bool = True,
    overwrite: bool = False,
    resume: bool = False,
) -> list[GridResult]:
    """Render every grid point of `points` with method `fn` of `model` (an `nn.Module`, or a `BendedModule`
    whose bends apply under every point) on `inputs` (keyword arguments, or a list of them: the points'
    input sets); the results in point order. See the module docstring for backends, files, `overwrite` and
    `resume`."""
    return list(
        stream_grid(
            model,
            fn,
            inputs,
            points,
            backend,
            out_dir,
            save_as,
            sample_rate,
            workers,
            batch,
            progress,
            overwrite,
            resume,
        )
    )


def _local_chunks(
    model: nn.Module, fn: str, inputs: list[dict], points: list[GridPoint], options: dict, workers: int | None
) -> Iterator[list[GridResult]]:
    renderer = Renderer(model, fn, inputs, **options)
    step = options["batch"]
    for start in range(0, len(points), step):
        yield renderer.run(points[start : start + step])


def _ray_chunks(
    model: nn.Module, fn: str, inputs: list[dict], points: list[GridPoint], options: dict, workers: int | None
) -> Iterator[list[GridResult]]:
    from ..extras import require

    ray = require("ray", "ray", "for sweeps on Ray")
    if not ray.is_initialized():  # ray.init joins the cluster named by RAY_ADDRESS, if any, else starts one
        ray.init(
            include_dashboard=False, log_to_driver=False, num_cpus=None if os.environ.get("RAY_ADDRESS") else workers
        )
    count = workers or max(1, int(ray.available_resources().get("CPU", 1)))
    actor = ray.remote(num_cpus=1)(Renderer)
    model_ref = ray.put(model)  # once: every actor reads it from the object store
    actors = [actor.remote(model_ref, fn, inputs, threads=1, **options) for _ in range(count)]
    step = max(1, min(options["batch"], -(-len(points) // (2 * count))))  # two chunks per worker at least
    futures = [
        actors[i % count].run.remote(points[start : start + step])
        for i, start in enumerate(range(0, len(points), step))
    ]
    try:
        for future in futures:
            yield ray.get(future)
    finally:
        for a in actors:
            ray.kill(a)
