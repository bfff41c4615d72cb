"""The config file and Consul connection settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldsync.adapters.consul import ConsulSettings
from fieldsync.errors import FieldsyncError, UsageError
from fieldsync.rules.config import server_from_arg
from fieldsync.usecases.settings import load_config, servers_from_args


def test_config_defaults_without_a_file(tmp_path: Path) -> None:
    config = load_config(None, str(tmp_path))
    assert config.key == "skills/eye/metadata/fields" and config.servers == () and config.lock_timeout == 60


def test_config_file_servers_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "fieldsync.yaml").write_text(
        "key: a/b\nprometheus:\n  - name: main\n    url: https://prom:9090\n    timeout: 3\n"
        "    basic_auth: {username: u, password_file: secret}\n  - name: offline\n    file: prom.yml\n")
    config = load_config(None, str(tmp_path))
    main, offline = config.servers
    assert config.key == "a/b" and main.timeout == 3 and main.retries == 2
    assert main.username == "u" and main.password_file == str(tmp_path / "secret")
    assert offline.file == str(tmp_path / "prom.yml") and offline.url is None


@pytest.mark.parametrize("text, fragment", [
    ("prometheus:\n  - name: a\n", "prometheus.0"),  # neither url nor file
    ("prometheus:\n  - name: a\n    url: x\n    file: y\n", "prometheus.0"),
    ("keys: a\n", "did you mean 'key'"),
    ("prometheus:\n  - {name: a, url: 'http://x', timout: 1}\n", "did you mean 'timeout'"),
    ("prometheus:\n  - {name: a, url: 'http://x'}\n  - {name: a, file: f}\n", "unique"),
])
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(FieldsyncError) as raised:
        load_config(str(path), str(tmp_path))
    assert fragment in str(raised.value) and (str(path) in str(raised.value))


def test_server_from_arg(tmp_path: Path) -> None:
    assert server_from_arg("http://127.0.0.1:9090/").name == "127.0.0.1:9090"
    assert servers_from_args([str(tmp_path)])[0].file == str(tmp_path)
    with pytest.raises(UsageError):
        servers_from_args([str(tmp_path / "missing.yml")])


def test_consul_settings_follow_the_consul_cli_variables(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("from-file\n")
    for name in ("ca.pem", "c.pem", "k.pem"):
        (tmp_path / name).write_text("-----BEGIN CERTIFICATE-----\n")
    env = {"CONSUL_HTTP_ADDR": "https://consul.internal:8501", "CONSUL_HTTP_TOKEN": "from-env",
           "CONSUL_HTTP_TOKEN_FILE": str(token), "CONSUL_CACERT": str(tmp_path / "ca.pem"),
           "CONSUL_CLIENT_CERT": str(tmp_path / "c.pem"), "CONSUL_CLIENT_KEY": str(tmp_path / "k.pem"),
           "CONSUL_TLS_SERVER_NAME": "consul.service", "CONSUL_HTTP_AUTH": "user:pa:ss", "CONSUL_NAMESPACE": "ops"}
    s = ConsulSettings.resolve(env)
    assert (s.scheme, s.address, s.token, s.verify, s.cert) == (
        "https", "consul.internal:8501", "from-file", str(tmp_path / "ca.pem"),
        (str(tmp_path / "c.pem"), str(tmp_path / "k.pem")))
    assert (s.tls_server_name, s.auth, s.namespace) == ("consul.service", ("user", "pa:ss"), "ops")
    plain = ConsulSettings.resolve({"CONSUL_HTTP_ADDR": "10.0.0.1:8500", "CONSUL_HTTP_SSL_VERIFY": "false"})
    assert (plain.scheme, plain.verify, plain.token) == ("http", False, None)
    assert ConsulSettings.resolve({}, address="127.0.0.1:1234").address == "127.0.0.1:1234"
    with pytest.raises(UsageError):
        ConsulSettings.resolve({}, token_file=str(tmp_path / "none"))


def test_servers_named_alike_are_refused(tmp_path: Path) -> None:
    for site in ("a", "b"):
        (tmp_path / site / "prometheus").mkdir(parents=True)
    with pytest.raises(FieldsyncError, match="names must be unique"):
        servers_from_args([str(tmp_path / "a" / "prometheus"), str(tmp_path / "b" / "prometheus")])
