"""The distributed panel without a browser: validation, the instant what-if, a real launch feeding the live traces."""
from __future__ import annotations

import time

import pytest

from dsopt.core.handle import Progress, RunHandle
from dsopt.distributed import PauseUnsupported
from dsopt.distributed import cost_model as cm
from dsopt.util.validation import ParameterError
from dsopt_widgets.distributed_panel import DistributedPanel, validate_launch, whatif


def test_launch_knobs_are_validated_with_the_knob_named():
    assert validate_launch(2, "ddp", 25, 64)["workers"] == 2
    with pytest.raises(ParameterError, match="workers"):
        validate_launch(0, "ddp", 25, 64)
    with pytest.raises(ParameterError, match="bucket_cap_mb"):
        validate_launch(2, "ddp", 0, 64)
    with pytest.raises(ParameterError, match="fusion_threshold_mb"):
        validate_launch(2, "ddp", 25, -1)
    with pytest.raises(ParameterError, match="not installed"):
        validate_launch(2, "horovod", 25, 64, horovod_ok=False)


def test_whatif_is_the_cost_model():
    res = whatif(8, 25, 102.4, 190, 0.0, 50)
    expect = cm.predicted_efficiency(8, 102.4e6, 0.19, 25e9 / 8, 50e-6)
    assert res["efficiency"] == pytest.approx(expect)
    assert res["allreduce_s"] == pytest.approx(cm.ring_allreduce_time(8, 102.4e6, 25e9 / 8, 50e-6))
    with pytest.raises(ParameterError, match="bandwidth"):
        whatif(8, 0, 100, 100, 0, 50)


def test_panel_refuses_bad_values_and_redraws_the_whatif_at_once():
    p = DistributedPanel({"scale": "tiny"}, horovod_ok=False)
    assert [v for _, v in p.backend.options] == ["ddp"]  # Horovod is not offered when it is missing
    p.workers.value = "0"
    assert p.start() is None and p.job is None
    assert "workers" in p.message.value
    before = list(p.whatif_fig.data[0].y)
    p.w_overlap.value = 0.5
    assert list(p.whatif_fig.data[0].y) != before and p.last_update_ms is not None
    p.w_grad.value = -1
    assert "gradient size" in p.w_out.value


def test_panel_launch_feeds_per_rank_traces(shared_data):
    p = DistributedPanel({"scale": "tiny", "epochs": 2, "global_batch": 32}, horovod_ok=False, timeout=300)
    p.workers.value = "2"
    res = p.start(block=True)
    assert res.world_size == 2 and len(p.live.data) == 4  # throughput + communication trace per rank
    for r in range(2):
        assert len(p.live.data[2 * r].x) == res.recorders[r].series("samples_per_s")[0].__len__() > 0
    assert "2 x ddp: ok" in p.status.value
    s = p.job.state
    assert p.job.status == "finished" and s.max_epochs == 2 and s.step == s.total_steps and s.epoch_progress == 2
    assert p.job.wait() is res  # a job that has ended answers every later wait() the same
    p.stop()
    assert "no job is running" in p.message.value
    fig = p.static_figure()
    assert len(fig.data) >= 2


def test_the_live_job_is_a_run_handle_that_cannot_pause(shared_data):
    p = DistributedPanel({"scale": "tiny", "epochs": 50, "global_batch": 32}, horovod_ok=False, timeout=300)
    job = p.start()
    try:
        assert isinstance(job, RunHandle) and isinstance(job.state, Progress) and job.recorder is job.recorders[0]
        assert job.start() is job and job.status == "running"
        with pytest.raises(PauseUnsupported, match="cannot pause"):
            job.pause()
        assert job.status == "running" and job.running
        with pytest.raises(TimeoutError):
            job.wait(0.2)  # the job goes on
        deadline = time.monotonic() + 240
        while job.state.step == 0:  # rank 0's first steps (workers start in a few seconds)
            assert time.monotonic() < deadline and job.running, "no step from rank 0"
            time.sleep(0.1)
            job.poll_records()
        assert job.state.max_epochs == 50 and 0 < job.state.epoch_progress < 50
        job.stop(wait=30)  # returns once every worker is gone
        assert not job.running and job.status == "stopped"
        with pytest.raises(KeyboardInterrupt):
            job.wait(10)
    finally:
        p.close()
    assert not job.running
