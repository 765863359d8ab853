"""`steward rollout`: spec files load and validate locally; commands reach a served API
(without a producer it answers 503, and the CLI prints the reason)."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from api.app import create_app
from api.store import Store
from steward.cli import app as cli
from steward.codec import decode_batch
from steward.rollout_cli import load_spec
from steward.schema.rollout import RolloutMessage
from tests.support import Served

SPEC = {"rollout_id": "r9", "model": "fraud", "baseline_version": "1.0",
        "canary_version": "2.0", "targets": ["eu-west-1"],
        "steps": [{"traffic_pct": 10}, {"traffic_pct": 100}]}
YAML = """rollout_id: r9
model: fraud
baseline_version: "1.0"
canary_version: "2.0"
targets: [eu-west-1]
steps:
  - traffic_pct: 10
  - traffic_pct: 100
"""


def test_spec_files_load_as_json_or_yaml(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps(SPEC))
    (tmp_path / "r.yaml").write_text(YAML)
    assert load_spec(tmp_path / "r.json") == load_spec(tmp_path / "r.yaml") == SPEC
    (tmp_path / "bad.yml").write_text(YAML.replace('"2.0"', '"1.0"'))
    with pytest.raises(ValueError, match="canary_version must differ"):
        load_spec(tmp_path / "bad.yml")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ValueError, match="mapping"):
        load_spec(tmp_path / "list.json")


@pytest.fixture
def served(tmp_path):
    store = Store(tmp_path / "steward.duckdb")
    app = create_app(store, CollectorRegistry(), {})
    server = Served(app)
    yield app, server.url
    server.stop()
    store.close()


def test_without_a_producer_the_cli_prints_the_503_reason(served, tmp_path):
    _, url = served
    (tmp_path / "r.json").write_text(json.dumps(SPEC))
    r = CliRunner().invoke(cli, ["rollout", "start", "--spec", str(tmp_path / "r.json"),
                                 "--api", url])
    assert r.exit_code == 2
    assert "503" in r.stderr and "no Kafka producer" in r.stderr
    r = CliRunner().invoke(cli, ["rollout", "show", "r9", "--api", url])
    assert r.exit_code == 2 and "404" in r.stderr


def test_start_and_abort_reach_the_rollouts_topic(served, tmp_path):
    app, url = served
    sent = []
    app.state.publish = sent.extend
    (tmp_path / "r.yaml").write_text(YAML)
    r = CliRunner().invoke(cli, ["rollout", "start", "--spec", str(tmp_path / "r.yaml"),
                                 "--api", url])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"rollout_id": "r9", "model": "fraud", "phase": "pending"}
    r = CliRunner().invoke(cli, ["rollout", "abort", "r9", "--model", "fraud", "--reason",
                                 "bad", "--api", url])
    assert r.exit_code == 0, r.output
    spec, cmd = (decode_batch(o.value, RolloutMessage).items[0] for o in sent)
    assert spec.spec.steps[1].traffic_pct == 100
    assert (cmd.command.command, cmd.command.reason) == ("abort", "bad")
