"""The metrics fieldsync exports: their state, how one run changes it, and Prometheus's text format.

One-shot syncs keep the state in a node_exporter textfile (read back before each run, so counters keep counting);
`fieldsync serve` keeps it in memory and adds what only a service has: leadership, webhook deliveries and drift
events. Either way, one run changes it the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from ..model import Job, Outcome, SyncReport

OUTCOMES = tuple(o.value for o in Outcome if o is not Outcome.DRY_RUN)  # a dry run is not counted
JOBS = tuple(job.value for job in Job)
DELIVERY_RESULTS = ("accepted", "rejected", "ignored")
BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, float("inf"))


@dataclass(frozen=True)
class MetricState:
    runs: dict[str, float] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0.0))
    duration_buckets: tuple[float, ...] = tuple(0.0 for _ in BUCKETS)  # cumulative counts, as exported
    duration_sum: float = 0.0
    last_success: float | None = None
    commits_behind: float | None = None
    hand_edits_pending: float | None = None
    conflicts: float | None = None
    prometheus_up: dict[str, float] = field(default_factory=dict)
    job_rewrites: dict[str, float] = field(default_factory=lambda: dict.fromkeys(JOBS, 0.0))
    # the service's own: None in a one-shot textfile
    leader: float | None = None
    deliveries: dict[str, float] | None = None
    drift_events: float | None = None
    stepdowns: float | None = None  # terms lost while the service ran: the session or the leader key
    reclones: float | None = None  # damaged clones made again


def observe(state: MetricState, outcome: Outcome, seconds: float, now: float,
            report: SyncReport | None = None) -> MetricState:
    """The state after one run; what a failed run could not learn (servers, hand edits) keeps its last value."""
    runs = {**state.runs, outcome.value: state.runs.get(outcome.value, 0.0) + 1}
    buckets = tuple(count + (seconds <= bound) for count, bound in zip(state.duration_buckets, BUCKETS, strict=True))
    changes: dict[str, Any] = {"runs": runs, "duration_buckets": buckets, "duration_sum": state.duration_sum + seconds}
    if outcome.succeeded:
        changes["last_success"] = now
    if report is not None:
        plan = report.plan
        changes["commits_behind"] = float(plan.position.behind if outcome is Outcome.REFUSED else 0)
        changes["hand_edits_pending"] = float(len(plan.kept))
        changes["conflicts"] = float(len(plan.conflicts))
        changes["prometheus_up"] = {s.name: float(s.success) for s in plan.inputs.statuses}
        if outcome is Outcome.WRITTEN and plan.job is not None and plan.job_rewrites:
            job = plan.job.job.value
            changes["job_rewrites"] = {**state.job_rewrites, job: state.job_rewrites.get(job, 0.0) + 1}
    return replace(state, **changes)


def service(state: MetricState) -> MetricState:
    """The state of a service that has just started: a standby with no delivery and no drift event yet."""
    return replace(state, leader=0.0, deliveries=dict.fromkeys(DELIVERY_RESULTS, 0.0), drift_events=0.0,
                   stepdowns=0.0, reclones=0.0)


def stepped_down(state: MetricState) -> MetricState:
    """One more term lost while the service ran."""
    return replace(state, stepdowns=(state.stepdowns or 0) + 1)


def recloned(state: MetricState) -> MetricState:
    """One more damaged clone made again."""
    return replace(state, reclones=(state.reclones or 0) + 1)


def role(state: MetricState, leading: bool) -> MetricState:
    """The state of a replica that leads, or stands by. A standby exports no view of the live document: what it saw
    as leader goes stale (the leader exports the current one), and alerts must not fire on it."""
    if leading:
        return replace(state, leader=1.0)
    return replace(state, leader=0.0, last_success=None, commits_behind=None, hand_edits_pending=None,
                   conflicts=None, prometheus_up={})


def delivered(state: MetricState, result: str) -> MetricState:
    deliveries = state.deliveries or {}
    return replace(state, deliveries={**deliveries, result: deliveries.get(result, 0.0) + 1})


def parse(text: str) -> MetricState:
    """The state a textfile written by `exposition` holds; a family it lacks starts afresh."""
    state = MetricState()
    runs, buckets, up, jobs = dict(state.runs), list(state.duration_buckets), {}, dict(state.job_rewrites)
    gauges: dict[str, float] = {}
    duration_sum = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "fieldsync_sync_runs_total":
                runs[sample.labels["outcome"]] = sample.value
            elif sample.name == "fieldsync_sync_duration_seconds_bucket":
                buckets[BUCKETS.index(float(sample.labels["le"]))] = sample.value
            elif sample.name == "fieldsync_sync_duration_seconds_sum":
                duration_sum = sample.value
            elif sample.name == "fieldsync_prometheus_up":
                up[sample.labels["server"]] = sample.value
            elif sample.name == "fieldsync_job_rewrites_repaired_total":
                jobs[sample.labels["job"]] = sample.value
            else:
                gauges[sample.name] = sample.value
    return MetricState(runs, tuple(buckets), duration_sum, gauges.get("fieldsync_last_success_timestamp_seconds"),
                       gauges.get("fieldsync_commits_behind"), gauges.get("fieldsync_hand_edits_pending"),
                       gauges.get("fieldsync_conflicts"), up, jobs)


class _Collector:
    def __init__(self, state: MetricState, version: str) -> None:
        self.state, self.version = state, version

    def collect(self) -> Iterator[Any]:
        s = self.state
        runs = CounterMetricFamily("fieldsync_sync_runs", "Sync runs, by outcome.", labels=["outcome"])
        for outcome, count in s.runs.items():
            runs.add_metric([outcome], count)
        yield runs
        yield HistogramMetricFamily(
            "fieldsync_sync_duration_seconds", "How long a sync run takes.",
            buckets=[("+Inf" if b == float("inf") else str(b), c) for b, c in zip(BUCKETS, s.duration_buckets,
                                                                                   strict=True)],
            sum_value=s.duration_sum)
        for name, text, value in (
            ("fieldsync_last_success_timestamp_seconds", "When a sync last wrote or found nothing to change.",
             s.last_success),
            ("fieldsync_commits_behind", "Commits the live document is behind the synced commit.", s.commits_behind),
            ("fieldsync_hand_edits_pending", "Hand edits of the live document kept, pending import.",
             s.hand_edits_pending),
            ("fieldsync_conflicts", "Hand edits git has changed too: each keeps its live value until resolved.",
             s.conflicts),
        ):
            if value is not None:
                yield GaugeMetricFamily(name, text, value=value)
        up = GaugeMetricFamily("fieldsync_prometheus_up", "Whether a Prometheus server answered the last run.",
                               labels=["server"])
        for server, value in sorted(s.prometheus_up.items()):
            up.add_metric([server], value)
        yield up
        jobs = CounterMetricFamily("fieldsync_job_rewrites_repaired", "Rewrites of the document by an old-backend "
                                   "job that a sync repaired, by job.", labels=["job"])
        for job, count in s.job_rewrites.items():
            jobs.add_metric([job], count)
        yield jobs
        if s.leader is not None:
            yield GaugeMetricFamily("fieldsync_leader", "1 on the active replica, 0 on a standby.", value=s.leader)
        if s.deliveries is not None:
            deliveries = CounterMetricFamily("fieldsync_webhook_deliveries", "Webhook deliveries, by result.",
                                             labels=["result"])
            for result, count in s.deliveries.items():
                deliveries.add_metric([result], count)
            yield deliveries
        if s.stepdowns is not None:
            yield CounterMetricFamily("fieldsync_leader_stepdowns", "Times this replica stopped leading while it ran "
                                      "(its session failed, or the leader key was taken).", value=s.stepdowns)
        if s.reclones is not None:
            yield CounterMetricFamily("fieldsync_clone_remade", "Times the clone of the git remote was found damaged "
                                      "and made again.", value=s.reclones)
        if s.drift_events is not None:
            yield CounterMetricFamily("fieldsync_drift_events", "Times the live document was found with a new set of "
                                      "hand edits.", value=s.drift_events)
        info = GaugeMetricFamily("fieldsync_build_info", "The fieldsync version.", labels=["version"])
        info.add_metric([self.version], 1.0)
        yield info


def exposition(state: MetricState, version: str) -> str:
    """Prometheus's text format, as node_exporter's textfile collector and a /metrics endpoint serve it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(state, version))
    return generate_latest(registry).decode("utf-8")
