"""The studio page (Panel): layers, add-bend form, bends, parameters, output, configs, exports, controls.

    >>> page = StudioPage(StudioState(bended, "decode", {"z": z}))
    >>> page.layout.servable()           # or return `page.layout` from a notebook cell

Every action calls the `StudioState` controller; renders arrive from its worker thread and are
put on the page on the page's own event loop.
"""

from __future__ import annotations

import base64
import inspect
import json
import logging
import threading
from functools import partial
from typing import Any

from ...errors import BendingError
from .catalog import default_range
from .render import Result
from .state import StudioState
from .views import View

log = logging.getLogger(__name__)


def _import_panel() -> Any:
    try:
        import panel as pn
    except ImportError as error:
        raise ImportError("the studio needs Panel: pip install torchbend[studio]") from error
    return pn


_LIVE_CLASSES: dict[type, type] = {}


def _live(widget: type) -> type:
    """`widget` without Panel's 50 ms wait before a browser change reaches Python: the renderer already
    coalesces changes, so a slider move starts its render at once (the class attribute is Panel's own)."""
    if widget not in _LIVE_CLASSES:
        _LIVE_CLASSES[widget] = type(f"Live{widget.__name__}", (widget,), {"_debounce": 0})
    return _LIVE_CLASSES[widget]


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


class StudioPage:
    """One browser session's page, bound to a shared `StudioState`."""

    def __init__(self, state: StudioState) -> None:
        pn = _import_panel()
        self.pn = pn
        self.state = state
        self.doc = pn.state.curdoc
        w = pn.widgets

        # layers
        self.search = w.TextInput(label="Search layers", placeholder="e.g. convt weight", css_classes=["tb-search"])
        self.table = w.Tabulator(
            self._frame(""),
            groupby=["group"],
            disabled=True,
            show_index=False,
            selectable=1,
            height=420,
            sizing_mode="stretch_width",
            pagination=None,
        )
        self.search.param.watch(lambda e: setattr(self.table, "value", self._frame(e.new)), "value_input")
        self.table.param.watch(self._on_select, "selection")

        # add bend
        self.targets = w.TextInput(label="Targets (a name or a regex)", css_classes=["tb-targets"])
        self.target_info = pn.pane.Str("", css_classes=["tb-target-info"])
        self.targets.param.watch(self._on_targets, "value_input")
        self.targets.param.watch(lambda e: setattr(self.targets, "value_input", e.new), "value")  # set from code
        self.callback = w.Select(label="Callback", options=state.callbacks(), value="Mask", css_classes=["tb-callback"])
        self.fields = pn.Column()
        self.field_widgets: dict[str, tuple] = {}
        self.callback.param.watch(lambda e: self._build_fields(), "value")
        self.add_button = w.Button(label="Add bend", color="primary", css_classes=["tb-add"])
        self.add_button.on_click(self._on_add)
        self.message = pn.pane.Alert("", alert_type="light", visible=False, css_classes=["tb-message"])
        self._build_fields()

        # bends and parameters
        self.bend_list = pn.Column(css_classes=["tb-bends"])
        self.param_list = pn.Column(css_classes=["tb-parameters"])

        # output
        self.image = pn.pane.HTML("", css_classes=["tb-output"], sizing_mode="stretch_width")
        self.plain = pn.pane.HTML("", visible=False, css_classes=["tb-plain"])
        self.show_plain = w.Checkbox(label="show the unbent output", value=False)
        self.show_plain.param.watch(self._on_show_plain, "value")
        self.render_info = pn.pane.Str("", css_classes=["tb-render-info"])

        # configs, exports, controls
        self.config_path = w.TextInput(
            label=f"Config file (in {state.out_dir.resolve()})", value="bends.json", css_classes=["tb-config-path"]
        )
        self.overwrite = w.Checkbox(label="overwrite an existing file", value=False, css_classes=["tb-overwrite"])
        save = w.Button(label="Save config", css_classes=["tb-save"])
        load = w.Button(label="Load config", css_classes=["tb-load"])
        save.on_click(lambda e: self.save())
        load.on_click(lambda e: self.load())
        script = w.Button(label="Export TorchScript", css_classes=["tb-export-script"])
        script.on_click(lambda e: self._act(lambda: f"wrote {state.export_script('bended.ts')}"))
        self.nntilde_methods = w.TextInput(label="nn~ methods (JSON)", value=self._nntilde_default())
        nntilde = w.Button(label="Export nn~", css_classes=["tb-export-nntilde"])
        nntilde.on_click(
            lambda e: self._act(
                lambda: (
                    "wrote " + str(state.export_nntilde("bended-nntilde.ts", json.loads(self.nntilde_methods.value)))
                )
            )
        )
        self.osc_port = w.IntInput(label="OSC port (0: any free)", value=0)
        osc = w.Button(label="Start OSC")
        osc.on_click(lambda e: self._act(lambda: f"OSC on port {state.start_osc(self.osc_port.value).port}"))
        self.midi_map = w.TextInput(label='MIDI CC map (JSON, e.g. {"1": "mask_prob"})', value="{}")
        self.midi_port = w.TextInput(label="MIDI input port (empty: none)", value="")
        midi = w.Button(label="Start MIDI")
        midi.on_click(
            lambda e: self._act(
                lambda: repr(
                    state.start_midi(
                        {int(k): v for k, v in json.loads(self.midi_map.value).items()}, self.midi_port.value or None
                    )
                )
            )
        )
        stop = w.Button(label="Stop OSC / MIDI")
        stop.on_click(
            lambda e: self._act(
                lambda: (
                    [state.stop_control(k) for k in ("osc", "midi")]  # type: ignore[func-returns-value]  # noqa: E501
                    and "stopped"
                )
            )
        )  # None values, then the message
        self.control_list = pn.pane.Str("", css_classes=["tb-controls"])

        self.layout = pn.Row(
            pn.Column("## Layers", self.search, self.table, width=480),
            pn.Column(
                "## Add bend",
                self.targets,
                self.target_info,
                self.callback,
                self.fields,
                self.add_button,
                self.message,
                "## Bends",
                self.bend_list,
                "## Parameters",
                self.param_list,
                width=330,
            ),
            pn.Column(
                f"## Output of `{state.fn}`",
                self.image,
                self.render_info,
                self.show_plain,
                self.plain,
                "## Config",
                self.config_path,
                self.overwrite,
                pn.Row(save, load),
                "## Export",
                script,
                self.nntilde_methods,
                nntilde,
                "## Live control",
                self.osc_port,
                osc,
                self.midi_map,
                self.midi_port,
                pn.Row(midi, stop),
                self.control_list,
                width=430,
            ),
        )
        self._refresh_bends()
        state.subscribe(self._on_state)
        state.renderer.subscribe(self._on_render)
        if self.doc is not None and self.doc.session_context is not None:
            self.doc.on_session_destroyed(lambda ctx: self.detach())
        if state.renderer.latest is not None:
            self._show(state.renderer.latest)
        state.request_render()

    def detach(self) -> None:
        """Stop following the state (the session closed)."""
        self.state.unsubscribe(self._on_state)
        self.state.renderer.unsubscribe(self._on_render)

    # --- helpers ------------------------------------------------------------------------------
    def _frame(self, query: str) -> Any:
        import pandas as pd

        return pd.DataFrame(self.state.search(query), columns=["name", "kind", "group", "shape", "size"])

    def _on_main(self, fn: Any) -> None:
        """Run `fn` on this page's event loop (renders and control messages arrive on other threads)."""
        if self.doc is not None and self.doc.session_context is not None:
            from panel.io.state import set_curdoc

            def run() -> None:
                with set_curdoc(self.doc):
                    fn()

            self.doc.add_next_tick_callback(run)
        else:
            fn()

    def _say(self, text: str, kind: str = "success") -> None:
        self.message.object = text
        self.message.alert_type = kind
        self.message.visible = bool(text)

    @staticmethod
    def _outcome(action: Any) -> tuple[str, str]:
        try:
            return str(action()), "success"
        except Exception as error:
            return f"{type(error).__name__}: {error}", "danger"

    def _act(self, action: Any) -> None:
        self._say(*self._outcome(action))

    def _in_background(self, action: Any) -> threading.Thread:
        """Run `action` on a worker thread (file access must not block the page's event loop); show its outcome."""
        thread = threading.Thread(
            target=lambda: self._on_main(partial(self._say, *self._outcome(action))),
            name="torchbend-studio-file",
            daemon=True,
        )
        thread.start()
        return thread

    def save(self) -> threading.Thread:
        """Save the bends to the file named in the config box (in `out_dir`), on a worker thread."""
        name, overwrite = self.config_path.value, self.overwrite.value
        return self._in_background(lambda: f"saved {self.state.save_config(name, overwrite=overwrite)}")

    def load(self) -> threading.Thread:
        """Load the config file named in the config box (in `out_dir`), on a worker thread."""
        name = self.config_path.value
        return self._in_background(
            lambda: f"loaded {len(self.state.load_config(name))} bend(s) from {self.state.config_file(name)}"
        )

    def _nntilde_default(self) -> str:
        return json.dumps({self.state.fn: {"in_channels": 1, "in_ratio": 1, "out_channels": 1, "out_ratio": 1}})

    # --- layers and the add-bend form -------------------------------------------------------
    def _on_select(self, event: Any) -> None:
        if event.new:
            self.targets.value = str(self.table.value.iloc[event.new[0]]["name"])

    def _on_targets(self, event: Any) -> None:
        pattern = self.targets.value_input or self.targets.value
        try:
            found = self.state.matches(pattern) if pattern else []
        except BendingError as error:
            self.target_info.object = str(error)
            return
        self.target_info.object = f"{len(found)} match(es): {', '.join(found[:4])}{' …' if len(found) > 4 else ''}"

    def _build_fields(self) -> None:
        w = self.pn.widgets
        self.field_widgets = {}
        rows = []
        for field in self.state.fields(self.callback.value):
            default = None if field.required else field.default
            css = [f"tb-field-{field.name}"]
            if field.kind == "float":
                widget = w.FloatInput(label=field.name, value=float(default or 0.0), css_classes=css)
            elif field.kind == "int":
                widget = w.IntInput(label=field.name, value=default, css_classes=css)
            elif field.kind == "bool":
                widget = w.Checkbox(label=field.name, value=bool(default), css_classes=css)
            elif field.kind == "function":
                widget = w.Select(label=field.name, options=self.state.functions(), css_classes=css)
            else:
                widget = w.TextInput(label=f"{field.name} (Python literal)", value=repr(default), css_classes=css)
            live = low = high = None
            row = [widget]
            if field.live:
                lo, hi = default_range(field.name, float(default or 0.0))
                live = w.Checkbox(label="live", value=True, css_classes=[f"tb-live-{field.name}"])
                low = w.FloatInput(label="min", value=lo, width=70)
                high = w.FloatInput(label="max", value=hi, width=70)
                row += [live, low, high]
            self.field_widgets[field.name] = (field, widget, live, low, high)
            rows.append(self.pn.Row(*row))
        self.fields.objects = rows

    def _on_add(self, event: Any) -> None:
        args, live = {}, {}
        for name, (field, widget, is_live, low, high) in self.field_widgets.items():
            value = widget.value
            if field.kind == "text" and value in ("None", "") and field.default is None:
                continue
            if value is None and (field.required or field.default is inspect.Parameter.empty):
                continue
            args[name] = value
            if is_live is not None and is_live.value:
                live[name] = (low.value, high.value)
        pattern = self.targets.value_input or self.targets.value
        self._act(lambda: f"added {self.state.add_bend(self.callback.value, pattern, args, live).label}")

    # --- bends and parameters -----------------------------------------------------------------
    def _on_state(self, what: str) -> None:
        self._on_main(self._refresh_bends if what == "bends" else self._refresh_controls)

    def _refresh_controls(self) -> None:
        self.control_list.object = "\n".join(self.state.control_lines()) or "no OSC / MIDI control running"

    def _refresh_bends(self) -> None:
        pn, w = self.pn, self.pn.widgets
        rows = []
        for i, entry in enumerate(self.state.entries):
            toggle = w.Checkbox(label=entry.label, value=entry.enabled, css_classes=["tb-bend-toggle"])
            toggle.param.watch(
                lambda e, i=i: self._act(lambda: self.state.set_enabled(i, e.new) or "ok"),  # type: ignore[func-returns-value]  # noqa: E501
                "value",
            )  # None, then the message
            remove = w.Button(label="remove", width=70, css_classes=["tb-bend-remove"])
            remove.on_click(lambda e, i=i: self._act(lambda: self.state.remove_bend(i) or "removed"))  # type: ignore[func-returns-value]  # noqa: E501
            rows.append(pn.Row(toggle, remove))
        self.bend_list.objects = rows or [pn.pane.Str("no bends")]
        sliders = []
        for name, p in self.state.parameters.items():
            low, high = p.range
            css = [f"tb-param-{name}"]
            if p.type is bool:
                widget = _live(w.Checkbox)(label=name, value=p.value, css_classes=css)
            elif low is None or high is None:
                widget = _live(w.IntInput if p.type is int else w.FloatInput)(
                    label=name, value=p.value, css_classes=css
                )
            elif p.type is int:
                widget = _live(w.IntSlider)(label=name, start=int(low), end=int(high), value=p.value, css_classes=css)
            else:
                step = (float(high) - float(low)) / 100
                widget = _live(w.FloatSlider)(
                    label=name, start=float(low), end=float(high), step=step, value=p.value, css_classes=css
                )
            widget.param.watch(lambda e, name=name: self._set(name, e.new), "value")
            sliders.append(widget)
        self.param_list.objects = sliders or [pn.pane.Str("no live parameters")]
        self._refresh_controls()

    def _set(self, name: str, value: Any) -> None:
        try:
            self.state.set_parameter(name, value)
        except Exception as error:
            self._say(f"{type(error).__name__}: {error}", "danger")

    # --- output -------------------------------------------------------------------------------
    def _on_render(self, result: Result) -> None:
        self._on_main(partial(self._show, result))

    def _show(self, result: Result) -> None:
        if result.error is not None:
            self.render_info.object = f"render failed: {type(result.error).__name__}: {result.error}"
            return
        view: View = result.output
        self.image.object = self._html(view, "tb-image")
        self.render_info.object = f"render #{result.version} in {result.seconds * 1000:.0f} ms — {view.text[:200]}"

    @staticmethod
    def _html(view: View, css: str) -> str:
        html = ""
        if view.wav is not None:
            wav = base64.b64encode(view.wav).decode()
            html += f'<audio controls class="tb-audio" src="data:audio/wav;base64,{wav}"></audio><br>'
        if view.png is not None:
            style = f"zoom:{view.zoom};image-rendering:pixelated" if view.zoom > 1 else ""
            return html + f'<img class="{css}" data-kind="{view.kind}" style="{style}" src="{_data_url(view.png)}">'
        text = view.text.replace("&", "&amp;").replace("<", "&lt;")
        return f'<pre class="{css}" data-kind="{view.kind}">{text}</pre>'

    def _on_show_plain(self, event: Any) -> None:
        self.plain.visible = event.new
        if event.new:
            self.plain.object = self._html(self.state.plain_view(), "tb-plain-image")
