"""The bending studio: a local web page to browse a model's layers, bend them and play the result live.

    >>> import torchbend as tb
    >>> server = tb.studio(bended, "decode", {"z": z}, port=5006)   # served on 127.0.0.1, behind a token
    >>> # in a notebook, tb.studio(bended, "decode", {"z": z}) returns the page, shown inline
    >>> server.url, server.state       # the page's URL (with ?token=...), the controller the page binds to
    >>> server.stop()

From a shell: ``torchbend studio`` (the shipped MNIST VAE) or
``torchbend studio mypkg.models:make --method forward --inputs 'x=randn(1,16)' --config bends.json``.
"""

from __future__ import annotations

from .state import BendEntry, StudioState

__all__ = ["BendEntry", "StudioServer", "StudioState", "studio"]


def __getattr__(name: str):  # the server needs Panel: imported on first use
    if name == "StudioServer":
        from .server import StudioServer

        return StudioServer
    raise AttributeError(name)


def studio(
    bended,
    fn: str = "forward",
    inputs=None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    inline: bool | None = None,
    out_dir: str = ".",
    show: bool = False,
    allow_remote: bool = False,
    **options,
):
    """Open the studio on `bended`'s method `fn` called with keyword `inputs`.

    In a notebook (or with ``inline=True``) returns the Panel layout, which renders in the cell;
    otherwise serves the page on `host`:`port` (port 0: a free one; a host other than loopback needs
    `allow_remote`) and returns a `StudioServer`, whose `url` holds the page's token. Configs are saved
    and loaded in `out_dir`. `options` go to `StudioState` (``sample_rate``, ``decode_tokens``).
    """
    from .server import in_notebook, serve

    state = StudioState(bended, fn, inputs or {}, out_dir=out_dir, **options)
    if inline if inline is not None else in_notebook():
        from .app import StudioPage, _import_panel

        _import_panel().extension("tabulator")
        return StudioPage(state).layout
    return serve(state, host=host, port=port, show=show, allow_remote=allow_remote)
