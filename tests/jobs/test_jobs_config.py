"""Workers' settings and failure messages: time limits checked, an unreachable broker names the fix."""

from __future__ import annotations

import pytest

from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.jobs import app as jobs_app
from tests.extras import needs_extra

pytestmark = needs_extra("workers")


@pytest.mark.parametrize(
    ("soft", "hard", "vis"),
    [(60, 60, 3600), (120, 60, 3600), (60, 3600, 3600), (60, 7200, 3600)],
)
def test_time_limits_must_be_soft_below_hard_below_visibility(soft, hard, vis):
    s = Settings.load(
        None,
        **{"workers.soft_time_limit_s": soft, "workers.time_limit_s": hard, "workers.visibility_timeout_s": vis},
    )
    with pytest.raises(ConfigError) as info:
        jobs_app.make_app(s)
    assert "soft < hard < visibility timeout" in info.value.message
    assert f"workers.time_limit_s={hard}" in info.value.message
    assert "workers.visibility_timeout_s" in (info.value.hint or "")


def test_valid_limits_make_an_app_with_json_only_and_explicit_queues():
    app = jobs_app.make_app(Settings.load(None, **{"workers.broker_url": "redis://127.0.0.1:9/0"}))
    conf = app.conf
    assert conf.task_serializer == "json" and list(conf.accept_content) == ["json"]
    assert [q.name for q in conf.task_queues] == ["asr", "diarise", "llm", "index"]
    assert conf.worker_prefetch_multiplier == 1  # it serves asr
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit > conf.task_soft_time_limit
    assert app.tasks["kb.transcribe"].acks_late and app.tasks["kb.distill"].acks_late
    assert app.tasks["kb.distill"].reject_on_worker_lost
    assert not app.tasks["kb.finalize"].acks_late  # the run's one writer: not idempotent to run twice at once
    llm_only = jobs_app.make_app(Settings.load(None), queues=("llm",))
    assert llm_only.conf.worker_prefetch_multiplier == Settings.load(None).workers.prefetch


def test_bad_limits_in_kb_yaml_are_a_clear_cli_error(workspace, kb):
    (workspace / "kb.yaml").write_text("workers:\n  soft_time_limit_s: 100\n  time_limit_s: 50\n", encoding="utf-8")
    res = kb("-w", workspace, "worker", "--queues", "llm")
    assert res.exit_code == 1
    assert "Error: Worker time limits must satisfy soft < hard < visibility timeout" in res.stderr
    assert "Hint: A task still running past the visibility timeout" in res.stderr


def test_unreachable_broker_names_the_fix(workspace, kb, tmp_path):
    res = kb("-w", workspace, "run", "--via", "celery", "--broker", f"redis+socket://{tmp_path}/none.sock")
    assert res.exit_code == 1, res.stdout + res.stderr
    assert "Error: Cannot reach the Celery broker at redis+socket://" in res.stderr
    assert "redis-server" in res.stderr and "--broker" in res.stderr
    res = kb("-w", workspace, "worker", "--broker", f"redis+socket://{tmp_path}/none.sock")
    assert res.exit_code == 1 and "Cannot reach the Celery broker" in res.stderr


def test_unknown_queue_is_a_usage_error(workspace, kb):
    res = kb("-w", workspace, "worker", "--queues", "asr,gpu")
    assert res.exit_code == 2 and "unknown queue(s) gpu" in res.stderr


def test_a_pool_process_that_exits_drops_its_running_gauge(tmp_path, monkeypatch):
    """worker_process_shutdown marks the process dead: its livesum file goes, its counters stay."""
    import prometheus_client  # noqa: F401  imported before the variable is set: this process stays single-process
    from celery.signals import worker_process_shutdown

    from pipeline.jobs import metrics

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for name in ("gauge_livesum_4242.db", "counter_4242.db", "gauge_livesum_4343.db"):
        (tmp_path / name).write_bytes(b"")
    metrics.mark_dead_on_exit()
    worker_process_shutdown.send(sender=None, pid=4242, exitcode=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_4242.db", "gauge_livesum_4343.db"]
