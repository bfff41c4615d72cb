"""Prometheus config directories shaped like the old system's production servers (../shared/skills-eye/prometheus):
a blackbox.yml that sorts first and holds no `global`, and a prometheus.yml with `global.external_labels`, a
blackbox job (metrics_path /probe) whose relabel list is an anchor reused by an exporter job, and consul_sd swapped
for file_sd. Written here from those shapes, not copied."""

from __future__ import annotations

from pathlib import Path

BLACKBOX = "modules:\n  http_2xx: {prober: http, timeout: 5s}\n  icmp: {prober: icmp}\n"
SHARED = ["company", "env", "site", "cliente", "tipo_monitoramento"]


def _prometheus_yml(cluster: str, datacenter: str, instance: str, extra: list[str]) -> str:
    meta = "".join(f"      - source_labels: [__meta_consul_service_metadata_{name}]\n"
                   f"        target_label: {name}\n" for name in SHARED + extra)
    return f"""# {cluster}: written for the tests in the shape of a production server
global:
  scrape_interval: 30s
  external_labels:
    cluster: '{cluster}'
    datacenter: '{datacenter}'
    prometheus_instance: '{instance}'
scrape_configs:
  - job_name: icmp
    metrics_path: /probe
    params: {{module: [icmp]}}
    file_sd_configs: [{{files: [targets/*.json]}}]
    relabel_configs: &relabel_blackbox
      - source_labels: [__address__]
        target_label: __param_target
{meta}      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:9115
  - job_name: http_2xx
    metrics_path: /probe
    params: {{module: [http_2xx]}}
    file_sd_configs: [{{files: [targets/*.json]}}]
    relabel_configs: *relabel_blackbox
  - job_name: node_exporter
    file_sd_configs: [{{files: [targets/*.json]}}]
    relabel_configs:
      - source_labels: [__meta_consul_service]
        target_label: cservice
      - source_labels: [__meta_consul_service_metadata_os]
        target_label: os
"""


SITES = {  # name: (hostname, cluster, datacenter, fields only this server has)
    "palmas": ("172.16.1.26", "palmas-master", "palmas-to", ["localizacao"]),
    "rio": ("172.16.200.14", "rio-cliente", "barra-rj", []),
    "genesis": ("11.144.0.21", "genesis-remote", "genesis-dtc", ["fabricante"]),
}


def write_sites(root: Path) -> dict[str, Path]:
    """One directory per site; returns {site name: directory}."""
    made = {}
    for name, (hostname, cluster, datacenter, extra) in SITES.items():
        directory = root / name
        directory.mkdir(parents=True)
        (directory / "blackbox.yml").write_text(BLACKBOX)
        (directory / "prometheus.yml").write_text(_prometheus_yml(cluster, datacenter, hostname, extra))
        made[name] = directory
    return made
