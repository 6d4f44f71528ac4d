"""The distributed panel: launch knobs, live per-rank throughput and communication share, a cost-model what-if.

* **Next launch**: workers, backend (Horovod greyed out with the reason when it is not installed), DDP
  bucket size (MB) and Horovod fusion threshold (MB). **Start** launches the study's training function on
  that many worker processes (:func:`dsopt.distributed.start`, non-blocking); **Stop** ends every worker.
  Invalid values are refused in the message line and nothing is launched.
* **Live**: every rank's throughput (samples/s) and exposed-communication share per step, read from the
  ranks' streamed Recorders on the kernel's main thread (rank 0's is the reference run).
* **What-if**: N, link bandwidth, gradient size, compute time per step and overlap -> predicted efficiency
  from the ring all-reduce model, redrawn at once (pure arithmetic, no run).

The job is a :class:`~dsopt.core.handle.RunHandle` that cannot pause (a panel without run controls:
:class:`~dsopt_widgets.base.Panel`, with its own Start and Stop). Its figures are
:class:`~dsopt_widgets.figure.LiveFigure` s: the live one redrawn at most once a second while the job
runs, the what-if at once. With no frontend the panel renders one static figure and returns.
"""
from __future__ import annotations

import time

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dsopt.distributed import cost_model as cm
from dsopt.util.validation import ParameterError, check_choice, check_number
from dsopt_widgets.base import Panel
from dsopt_widgets.fields import parse_whole, whole_field
from dsopt_widgets.figure import LiveFigure

WIDTH = 980
WHATIF_NS = np.unique(np.geomspace(1, 1024, 41).round().astype(int))
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
TRAIN_TARGET = "dsopt.studies.distributed:train_worker"


def validate_launch(workers, backend, bucket_cap_mb, fusion_threshold_mb, *, horovod_ok: bool = True,
                    max_workers: int = 64) -> dict:
    """The panel's launch knobs, checked; ParameterError names the knob and its range."""
    workers = parse_whole("workers", workers, low=1, high=max_workers)  # the box's text or a number
    backend = check_choice("backend", backend, ["ddp", "horovod"])
    if backend == "horovod" and not horovod_ok:
        raise ParameterError("backend", "backend 'horovod' is not installed here (see `dsopt doctor`); choose ddp")
    bucket = float(check_number("bucket_cap_mb", bucket_cap_mb, low=0.0, high=1024.0, low_inclusive=False))
    fusion = float(check_number("fusion_threshold_mb", fusion_threshold_mb, low=0.0, high=1024.0))
    return {"workers": workers, "backend": backend, "bucket_cap_mb": bucket, "fusion_threshold_mb": fusion}


def whatif(n, bandwidth_gbps, grad_mb, compute_ms, overlap, latency_us) -> dict:
    """Predicted efficiency (and the all-reduce time) for one what-if setting; ParameterError if invalid."""
    n = check_number("N", n, low=1, high=100000, integer=True)
    bw = float(check_number("bandwidth (Gbit/s)", bandwidth_gbps, low=0.0, high=1e5, low_inclusive=False)) * 1e9 / 8
    nbytes = float(check_number("gradient size (MB)", grad_mb, low=0.0, high=1e6)) * 1e6
    compute = float(check_number("compute per step (ms)", compute_ms, low=0.0, high=1e6, low_inclusive=False)) / 1e3
    overlap = float(check_number("overlap", overlap, low=0.0, high=1.0))
    latency = float(check_number("latency (us)", latency_us, low=0.0, high=1e6)) / 1e6
    return {"n": n, "allreduce_s": cm.ring_allreduce_time(n, nbytes, bw, latency),
            "efficiency": cm.predicted_efficiency(n, nbytes, compute, bw, latency, overlap=overlap),
            "curve": [cm.predicted_efficiency(int(k), nbytes, compute, bw, latency, overlap=overlap) for k in WHATIF_NS]}


class DistributedPanel(Panel):
    """Launch, watch and reason about a data-parallel job.

    Parameters
    ----------
    train_kwargs: keyword arguments of :func:`dsopt.studies.distributed.train_worker` for launched jobs.
    workers, backend: initial launch knobs. ``horovod_ok``: whether Horovod is usable (default: asks
        :func:`dsopt.distributed.doctor.probe` in a subprocess).
    latency_s: the what-if's per-message latency (default 50 us; the notebook passes this machine's fit).
    """

    #: Seconds between two redraws of the live figure while the job runs.
    redraw_interval = 1.0

    def __init__(self, train_kwargs: dict | None = None, *, workers: int = 2, backend: str = "ddp",
                 horovod_ok: bool | None = None, latency_s: float = 5e-5, refresh: float = 0.5, timeout: float = 1800,
                 device: str = "cpu"):
        super().__init__(refresh=refresh)  # a panel without run controls: its own Start / Stop, no Export
        self.train_kwargs = dict(train_kwargs or {})
        self.timeout, self.device = timeout, device
        if horovod_ok is None:
            from dsopt.distributed.doctor import doctor

            horovod_ok = next(r["ok"] for r in doctor() if r["backend"] == "horovod")
        self.horovod_ok = bool(horovod_ok)
        self.job = None
        self.last_result = None
        self.last_update_ms: float | None = None
        style = {"description_width": "150px"}
        self.workers = whole_field(workers, "workers", style=style)  # read exactly as typed, checked on Start
        self.backend = W.Dropdown(options=[("DDP (torch.distributed, gloo)", "ddp")] +
                                  ([("Horovod (gloo)", "horovod")] if self.horovod_ok else []),
                                  value=backend if (backend != "horovod" or self.horovod_ok) else "ddp",
                                  description="backend", style=style, layout=W.Layout(width="440px"))
        self.bucket = W.FloatText(value=25.0, description="DDP bucket (MB)", style=style)
        self.fusion = W.FloatText(value=128.0, description="Horovod fusion (MB)", style=style)
        self.start_button = W.Button(description="Start", button_style="primary", tooltip="launch with these knobs")
        self.stop_button = W.Button(description="Stop", button_style="danger", tooltip="end every worker now")
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.status = W.HTML("no job yet" + ("" if self.horovod_ok else
                                             " &middot; Horovod not installed here: backend ddp only (see `dsopt doctor`)"))
        # what-if
        wide = W.Layout(width="460px")  # a 1..1024 slider needs a track a person can aim at (it was 54 px)
        self.w_n = W.IntSlider(value=128, min=1, max=1024, description="N workers", style=style, layout=wide)
        self.w_bw = W.Dropdown(options=[(f"{k} ({cm.gbps(v):g} Gbit/s)", cm.gbps(v)) for k, v in cm.BANDWIDTHS.items()],
                               value=cm.gbps(cm.BANDWIDTHS["25 GbE"]), description="link", style=style,
                               layout=W.Layout(width="440px"))
        first = next(iter(cm.MODEL_GRADIENT_BYTES))
        self.w_grad = W.FloatText(value=cm.MODEL_GRADIENT_BYTES[first] / 1e6, description="gradient (MB)", style=style)
        self.w_compute = W.FloatText(value=1000 * cm.ASSUMED_COMPUTE_S[first], description="compute / step (ms)", style=style)
        self.w_overlap = W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="overlap", style=style,
                                       layout=wide)
        self.w_latency = W.FloatText(value=round(1e6 * latency_s, 1), description="latency (us)", style=style)
        self.w_out = W.HTML()
        self.whatif_fig = LiveFigure(self._whatif_figure(self._whatif_values()))
        for w in (self.w_n, self.w_bw, self.w_grad, self.w_compute, self.w_overlap, self.w_latency):
            w.observe(self._on_whatif, names="value")
        self.live = LiveFigure(self._live_figure(), min_interval=self.redraw_interval)
        self._cursors: dict[int, int] = {}
        self._on_whatif()

    # -- launching ----------------------------------------------------------------------------------------
    def launch_values(self) -> dict:
        return validate_launch(self.workers.value, self.backend.value, self.bucket.value, self.fusion.value,
                               horovod_ok=self.horovod_ok)

    def start(self, *, block: bool = False):
        """Launch the training function with the knobs (refused with a message if a knob is invalid)."""
        from dsopt.distributed.launcher import DistributedError, start

        if self.job is not None and self.job.running:
            self._say("a job is running: Stop it first", error=True)
            return None
        try:
            v = self.launch_values()
        except ParameterError as exc:
            self._say(f"not launched: {exc}", error=True)
            return None
        env = {"HOROVOD_FUSION_THRESHOLD": str(int(v["fusion_threshold_mb"] * 1024 * 1024))}
        kw = dict(self.train_kwargs, bucket_cap_mb=v["bucket_cap_mb"])
        try:
            self.job = start(TRAIN_TARGET, v["workers"], v["backend"], kwargs=kw, timeout=self.timeout, echo=False, env=env,
                             device=self.device)
        except DistributedError as exc:
            self._say(f"not launched: {exc}", error=True)
            return None
        self._reset_live(v["workers"])
        self._say(f"launched {v['workers']} x {v['backend']} (bucket {v['bucket_cap_mb']:g} MB, "
                  f"fusion {v['fusion_threshold_mb']:g} MB)")
        if block:
            return self.wait()
        self._poll_refresh()
        return self.job

    def wait(self):
        """Block until the job ends (headless use); keep its result."""
        from dsopt.distributed.launcher import DistributedError

        try:
            self.last_result = self.job.wait()
        except DistributedError as exc:
            self._say(f"job failed: {str(exc).splitlines()[0]}", error=True)
            raise
        finally:
            self.refresh()
        return self.last_result

    def stop(self, wait: float | None = 10.0) -> None:
        """End every worker (``wait``: seconds to let them go before they are killed)."""
        if self.job is None or not self.job.running:
            self._say("no job is running")
            return
        self.job.stop(wait=wait)
        self._say("stopped: every worker ended")
        self.refresh()

    def close(self) -> None:
        """A re-run cell replaced the panel: stop polling and end its job."""
        super().close()
        if self.job is not None and self.job.running:
            self.job.stop(wait=10.0)

    # -- live traces ------------------------------------------------------------------------------------------
    def _live_figure(self) -> go.Figure:
        fig = make_subplots(rows=1, cols=2, subplot_titles=["throughput per rank", "exposed communication per rank"])
        fig.update_xaxes(title_text="step", row=1, col=1)
        fig.update_xaxes(title_text="step", row=1, col=2)
        fig.update_yaxes(title_text="samples / s", row=1, col=1)
        fig.update_yaxes(title_text="share of step time (%)", range=[0, 100], row=1, col=2)
        fig.update_layout(height=300, width=WIDTH, margin=dict(l=60, r=20, t=40, b=40))
        return fig

    def _reset_live(self, n: int) -> None:
        """Two empty traces per rank (throughput left, communication right), drawn at once."""
        with self.live.batch_update(force=True):
            self.live.data = []
            for r in range(n):
                color = COLORS[r % len(COLORS)]
                self.live.add_scatter(x=[], y=[], name=f"rank {r}", legendgroup=f"r{r}", line=dict(color=color),
                                      xaxis="x", yaxis="y")
                self.live.add_scatter(x=[], y=[], name=f"rank {r}", legendgroup=f"r{r}", showlegend=False,
                                      line=dict(color=color), xaxis="x2", yaxis="y2")
        self._cursors = {r: 0 for r in range(n)}

    def refresh(self) -> bool:
        """Read new rows of every rank and extend its traces (main thread; the live figure redraws when
        due, and at once when the job has ended); True while the job runs and the panel is shown."""
        job = self.job
        if job is None or not super().refresh():
            return False
        running = job.running  # before reading: the rows of a job that has ended are then all drawn
        job.poll_records()
        new = {}
        for r, rec in job.recorders.items():
            rows, self._cursors[r] = rec.since(self._cursors.get(r, 0))
            new[2 * r] = [(x.step, x.value) for x in rows if x.name == "samples_per_s"]
            new[2 * r + 1] = [(x.step, 100 * x.value) for x in rows if x.name == "comm_share"]
        if any(new.values()):
            with self.live.batch_update(force=not running):
                for i, pts in new.items():
                    trace = self.live.data[i]
                    trace.x = tuple(trace.x or ()) + tuple(p[0] for p in pts)
                    trace.y = tuple(trace.y or ()) + tuple(p[1] for p in pts)
        elif self.live.stale:
            self.live.redraw(force=not running)  # what the throttle held back, once due
        last = {r: rec.last("samples_per_s") for r, rec in job.recorders.items()}
        acc = job.recorders[0].last("val_accuracy")
        self.status.value = (f"{job.n} x {job.backend}: {job.outcome}; samples/s per rank "
                             + ", ".join(f"{r}: {v:.0f}" if v else f"{r}: -" for r, v in last.items())
                             + (f"; rank 0 val accuracy {100 * acc:.1f} %" if acc is not None else ""))
        return running

    # -- what-if ------------------------------------------------------------------------------------------------
    def _whatif_values(self) -> dict | None:
        try:
            return whatif(self.w_n.value, self.w_bw.value, self.w_grad.value, self.w_compute.value,
                          self.w_overlap.value, self.w_latency.value)
        except ParameterError:
            return None

    def _whatif_figure(self, res: dict | None) -> go.Figure:
        fig = go.Figure()
        fig.add_scatter(x=WHATIF_NS.tolist(), y=[100 * e for e in res["curve"]] if res else [], mode="lines",
                        name="predicted")
        fig.add_scatter(x=[res["n"]] if res else [], y=[100 * res["efficiency"]] if res else [], mode="markers",
                        marker=dict(size=12), name="your N")
        a, h = cm.ARTICLE, cm.HOROVOD_PAPER
        fig.add_scatter(x=[a["gpus"]], y=[100 * a["hours_1"] / a["hours_n"] / a["gpus"]], mode="markers",
                        marker=dict(symbol="x", size=12, color="black"), name="article (47 % at 8)")
        fig.add_scatter(x=[h["gpus"]] * 2, y=[100 * h["efficiency_low"], 100 * h["efficiency_high"]], mode="lines",
                        line=dict(color="black", width=6), name="Horovod paper (88-90 % at 128)")
        fig.update_xaxes(type="log", title_text="workers N")
        fig.update_yaxes(title_text="predicted efficiency (%)", range=[0, 105])
        fig.update_layout(height=300, width=WIDTH, margin=dict(l=60, r=20, t=30, b=40))
        return fig

    def _on_whatif(self, change=None) -> None:
        t0 = time.perf_counter()
        try:
            res = whatif(self.w_n.value, self.w_bw.value, self.w_grad.value, self.w_compute.value,
                         self.w_overlap.value, self.w_latency.value)
        except ParameterError as exc:
            self.w_out.value = f'<span style="color:#b00020">{exc}</span>'
            return
        # the answer's line first: the browser handles messages in order, and the figure's render is the slow part
        self.w_out.value = (f"N = {res['n']}: one all-reduce {1000 * res['allreduce_s']:.1f} ms, predicted efficiency "
                            f"<b>{100 * res['efficiency']:.0f} %</b> (a model output, not a measurement)")
        with self.whatif_fig.batch_update(force=True):
            self.whatif_fig.data[0].y = [100 * e for e in res["curve"]]
            self.whatif_fig.data[1].x, self.whatif_fig.data[1].y = [res["n"]], [100 * res["efficiency"]]
        self.last_update_ms = 1000 * (time.perf_counter() - t0)

    # -- display ------------------------------------------------------------------------------------------------
    def widget(self) -> W.Widget:
        launch = W.VBox([W.HTML("<b>Next launch</b>"), W.HBox([self.workers, self.backend]),
                         W.HBox([self.bucket, self.fusion]), W.HBox([self.start_button, self.stop_button]),
                         self.status, self.message])
        what = W.VBox([W.HTML("<b>What-if: ring all-reduce model</b>"), W.HBox([self.w_n, self.w_bw]),
                       W.HBox([self.w_grad, self.w_compute]), W.HBox([self.w_overlap, self.w_latency]), self.w_out,
                       self.whatif_fig.widget])
        return W.VBox([launch, self.live.widget, what], layout=W.Layout(max_width=f"{WIDTH + 20}px"))

    def _on_shown(self) -> None:
        """Displayed with a frontend: follow a job that is already running."""
        if self.job is not None and self.job.running:
            self._poll_refresh()

    def static_figure(self) -> go.Figure:
        """Live traces so far and the what-if curve, as one plain figure (headless)."""
        self.refresh()
        fig = make_subplots(rows=1, cols=2, subplot_titles=["throughput per rank (samples/s)", "what-if: predicted efficiency (%)"])
        for tr in self.live.data[0::2]:
            fig.add_trace(go.Scatter(tr), row=1, col=1)
        for tr in self.whatif_fig.data:
            fig.add_trace(go.Scatter(tr), row=1, col=2)
        fig.update_xaxes(title_text="step", row=1, col=1)
        fig.update_xaxes(type="log", title_text="workers N", row=1, col=2)
        fig.update_layout(height=340, showlegend=True, margin=dict(l=60, r=20, t=40, b=40))
        return fig

