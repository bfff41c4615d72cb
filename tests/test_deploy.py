"""The shipped deployment files run `fieldsync serve` with options it has, the way the issue asks: a non-root
pinned image, a systemd unit systemd accepts, a Kubernetes Deployment of two replicas with the health probes, and a
Nomad job."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fieldsync.cli import serve

DEPLOY = Path(__file__).resolve().parents[1] / "docs" / "deploy"
OPTIONS = {opt for param in serve.params for opt in param.opts if opt.startswith("--")} | {"--help"}


def _flags(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text))


@pytest.mark.parametrize("name", ["Containerfile", "fieldsync.service", "kubernetes.yaml", "fieldsync.nomad.hcl"])
def test_every_flag_a_deployment_gives_is_an_option_of_serve(name: str) -> None:
    text = "\n".join(line for line in (DEPLOY / name).read_text().splitlines() if not line.lstrip().startswith("#"))
    unknown = _flags(text) - OPTIONS - {"--no-cache-dir", "--disable-pip-version-check", "--system", "--uid",
                                        "--user-group", "--home-dir", "--create-home", "--from"}
    assert not unknown, unknown


def test_the_image_is_pinned_and_runs_as_an_unprivileged_user() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.M)
    assert bases and all(re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", b) for b in bases), bases
    assert "-c .github/constraints.txt" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users == ["10001:10001"]
    assert 'ENTRYPOINT ["fieldsync", "serve"]' in text


def test_the_kubernetes_deployment_runs_two_replicas_with_probes() -> None:
    documents = {d["kind"]: d for d in yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text())}
    deployment = documents["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert "--listen=0.0.0.0:9469" in container["args"]
    assert documents["Service"]["spec"]["ports"][0]["port"] == 9469


def test_the_nomad_job_runs_two_allocations_checked_on_readyz() -> None:
    text = (DEPLOY / "fieldsync.nomad.hcl").read_text()
    assert re.search(r"^\s*count = 2$", text, re.M) and 'path     = "/readyz"' in text
    assert 'kill_signal  = "SIGTERM"' in text and 'change_signal = "SIGHUP"' in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    fieldsync = Path(sys.executable).parent / "fieldsync"
    unit = tmp_path / "fieldsync.service"
    unit.write_text((DEPLOY / "fieldsync.service").read_text().replace("/usr/local/bin/fieldsync", str(fieldsync)))
    checked = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and not checked.stderr.strip(), checked.stderr
