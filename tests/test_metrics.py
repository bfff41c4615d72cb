"""One-shot syncs count themselves in a node_exporter textfile, in Prometheus's text format."""

from __future__ import annotations

import subprocess

from prometheus_client.parser import text_string_to_metric_families
from support.commands import run_sync

from fieldsync import __version__
from fieldsync.localservers import find_binary, refused_address


def _samples(path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # noqa: ANN001
    text = path.read_text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_file_counts_runs_and_passes_promtool(consul, example_prometheus, field_repo, tmp_path) -> None:
    metrics = tmp_path / "fieldsync.prom"
    key = "metrics/fields"
    for _ in range(2):
        code, output = run_sync(consul, field_repo.path, example_prometheus.url, key=key,
                                extra=("--metrics-file", str(metrics)))
        assert code == 0, output
    with refused_address() as nowhere:
        code, _ = run_sync(consul, field_repo.path, f"http://{nowhere}", key=key,
                           extra=("--metrics-file", str(metrics)))
    assert code == 1
    samples = _samples(metrics)
    runs = {dict(labels)["outcome"]: value for (name, labels), value in samples.items()
            if name == "fieldsync_sync_runs_total"}
    assert runs == {"written": 1, "unchanged": 1, "refused": 0, "failed": 1}
    assert samples[("fieldsync_sync_duration_seconds_count", ())] == 3
    server = example_prometheus.url.split("//")[1]
    assert samples[("fieldsync_prometheus_up", (("server", server),))] == 1  # the failed run learned nothing
    assert samples[("fieldsync_hand_edits_pending", ())] == 0 and samples[("fieldsync_commits_behind", ())] == 0
    assert samples[("fieldsync_build_info", (("version", __version__),))] == 1
    assert samples[("fieldsync_last_success_timestamp_seconds", ())] > 0
    checked = subprocess.run([find_binary("promtool"), "check", "metrics"], input=metrics.read_bytes(),
                             capture_output=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_alerting_rules_load_into_a_real_prometheus(start_prometheus, tmp_path) -> None:
    import json
    import time
    import urllib.request
    from pathlib import Path

    rules = Path(__file__).resolve().parents[1] / "docs" / "monitoring" / "fieldsync-alerts.yml"
    checked = subprocess.run([find_binary("promtool"), "check", "rules", str(rules)], capture_output=True,
                             timeout=60, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    prom = start_prometheus(f"global: {{evaluation_interval: 1s}}\nrule_files: ['{rules}']\nscrape_configs: []\n")
    deadline = time.monotonic() + 30
    while True:  # every rule loaded and evaluated without error
        with urllib.request.urlopen(f"{prom.url}/api/v1/rules", timeout=5) as answer:
            groups = json.load(answer)["data"]["groups"]
        loaded = {r["name"]: r["health"] for g in groups for r in g["rules"]}
        if loaded and all(h == "ok" for h in loaded.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert set(loaded) == {"FieldsyncSyncFailing", "FieldsyncSyncFailingSinceStart", "FieldsyncHandEditsPending",
                           "FieldsyncConflict", "FieldsyncCommitsBehind", "FieldsyncDown", "FieldsyncNoLeader"}, loaded
    assert set(loaded.values()) == {"ok"}, loaded


def test_the_alerts_fire_when_they_should_by_promtools_unit_tests() -> None:
    """docs/monitoring/fieldsync-alerts.test.yml: a conflict fires within 5 minutes; a restart into failure fires
    though no success was ever seen; no leader and no replica up fire when every replica is down, or gone."""
    from pathlib import Path

    tests = Path(__file__).resolve().parents[1] / "docs" / "monitoring" / "fieldsync-alerts.test.yml"
    checked = subprocess.run([find_binary("promtool"), "test", "rules", str(tests)], capture_output=True,
                             timeout=60, text=True)
    assert checked.returncode == 0 and "SUCCESS" in checked.stdout, checked.stdout + checked.stderr
