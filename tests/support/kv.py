"""Reading and editing Consul KV the way an operator would: the consul CLI and a plain client."""

from __future__ import annotations

import json
import os
import subprocess

import consul as py_consul

from fieldsync.localservers import ConsulAgent, find_binary

KEY = "skills/eye/metadata/fields"


def client(agent: ConsulAgent) -> py_consul.Consul:
    host, port = agent.http_addr.split(":")
    return py_consul.Consul(host=host, port=int(port))


def live(agent: ConsulAgent, key: str = KEY) -> tuple[dict | None, int]:
    _, item = client(agent).kv.get(key)
    return (None, 0) if item is None else (json.loads(item["Value"]), item["ModifyIndex"])


def records(agent: ConsulAgent, key: str = KEY) -> dict[str, dict]:
    """The live records by name, the old backend's {data, meta} envelope unwrapped as its reader does."""
    doc, _ = live(agent, key)
    assert doc is not None
    if "data" in doc and "meta" in doc:
        doc = doc["data"]
    return {r["name"]: r for r in doc["fields"]}


def hand_edit(agent: ConsulAgent, key: str, field: str, **changes: object) -> None:
    """What an operator or the old UI does: get the value, change it, `consul kv put` it back."""
    env = {**os.environ, "CONSUL_HTTP_ADDR": agent.http_addr}
    consul_bin = find_binary("consul")
    raw = subprocess.run([consul_bin, "kv", "get", key], env=env, capture_output=True, check=True, timeout=30).stdout
    doc = json.loads(raw)
    for record in doc["fields"]:
        if record["name"] == field:
            record.update(changes)
    subprocess.run([consul_bin, "kv", "put", key, "-"], input=json.dumps(doc).encode(), env=env, check=True,
                   capture_output=True, timeout=30)


STATE_PREFIX = "fieldsync/"  # where fieldsync keeps the lock and the run record by default


def run_record(agent: ConsulAgent, key: str = KEY) -> dict:
    """The run record sync keeps for `key`."""
    record, _ = live(agent, f"{STATE_PREFIX}{key}.status")
    assert record is not None
    return record


MASTER_TOKEN = "root-secret"  # what tests give start_consul(acl_master_token=...)


def acl_token(agent: ConsulAgent, name: str, rules: str) -> str:
    """A new token holding one new policy with `rules`, made with the consul CLI."""
    env = {**os.environ, "CONSUL_HTTP_ADDR": agent.http_addr, "CONSUL_HTTP_TOKEN": MASTER_TOKEN}
    consul_bin = find_binary("consul")
    subprocess.run([consul_bin, "acl", "policy", "create", "-name", name, "-rules", rules], env=env, check=True,
                   capture_output=True, timeout=30)
    created = subprocess.run([consul_bin, "acl", "token", "create", "-policy-name", name, "-format", "json"],
                             env=env, check=True, capture_output=True, timeout=30, text=True)
    return json.loads(created.stdout)["SecretID"]
