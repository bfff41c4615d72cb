"""The shipped deployment files run `fieldsync serve` with options it has, the way the issue asks: a non-root
pinned image that listens where the README says, a hardened systemd unit systemd accepts, a Kubernetes Deployment of
two replicas with the health probes for a current consul-k8s (no agent on the nodes), and a Nomad job."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.commands import cli
from support.serving import Served

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
    (listen,) = [p for p in serve.params if p.name == "listen"]
    assert f"ENV {listen.envvar}=0.0.0.0:9469" in text  # what serve reads: every address, in a container


def test_serve_listens_where_its_environment_says(consul, field_repo) -> None:  # noqa: ANN001
    """The image sets FIELDSYNC_LISTEN rather than --listen: a real serve binds there, and a bad value is named."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    served = Served(consul, "--repo", str(field_repo.path), env={"FIELDSYNC_LISTEN": f"127.0.0.1:{port}"},
                    listen=False)
    try:
        started = served.wait_for(lambda e: e["event"] == "started")
        assert started["listen"] == f"127.0.0.1:{port}" and served.get("/healthz")[0] == 200, served.log
    finally:
        assert served.stop() == 0, served.log
    code, output = cli(None, "serve", "--repo", str(field_repo.path), env={"FIELDSYNC_LISTEN": "nowhere"})
    assert code == 2 and "--listen (or FIELDSYNC_LISTEN) 'nowhere': give HOST:PORT" in output, output


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
    # consul-k8s 1.x runs no agent on the nodes: the servers' Service, --agentless, the token and CA from secrets
    env = {e["name"]: e for e in container["env"]}
    assert env["CONSUL_HTTP_ADDR"]["value"] == "https://consul-server.consul.svc:8501" and "HOST_IP" not in env
    assert "--agentless" in container["args"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets[mounts["/etc/consul-ca"]] == "consul-ca-cert"
    assert env["CONSUL_CACERT"]["value"].startswith("/etc/consul-ca/")
    token = next(a.partition("=")[2] for a in container["args"] if a.startswith("--consul-token-file="))
    assert secrets[mounts[str(Path(token).parent)]] == "fieldsync"


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


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_unit_is_hardened_and_always_comes_back(tmp_path: Path) -> None:
    unit = tmp_path / "fieldsync.service"
    text = (DEPLOY / "fieldsync.service").read_text()
    unit.write_text(text.replace("/usr/local/bin/fieldsync", str(Path(sys.executable).parent / "fieldsync")))
    scored = subprocess.run(["systemd-analyze", "security", "--offline=true", "--threshold=30", str(unit)],
                            capture_output=True, text=True, timeout=60)
    exposure = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", scored.stdout)[1])  # type: ignore[index]
    assert scored.returncode == 0 and exposure <= 3.0, scored.stdout
    settings = dict(line.split("=", 1) for line in text.splitlines() if re.match(r"^[A-Z]\w+=", line))
    assert settings["Restart"] == "always" and settings["RestartPreventExitStatus"] == "2"  # a usage error waits
    assert int(settings["LimitNOFILE"]) >= 1024 and float(settings["TimeoutStopSec"]) >= 10 + 2  # --grace + margin
    print(f"systemd-analyze security: {exposure}")
