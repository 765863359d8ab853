"""Secrets never reach a log: not through a settings object's repr, nor through the
error a refused setting raises (which the process prints as it dies at start)."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import SecretStr, ValidationError

from api.settings import ApiSettings
from collector.agent.settings import AgentSettings
from collector.settings import CollectorSettings
from processors.settings import ProcessorSettings
from steward.auth import digest, new_token
from steward.webhooks.settings import WebhookSettings

TOKEN, SPEC = new_token("n1", ["ingest"], None)


@pytest.mark.parametrize("settings", [ApiSettings, CollectorSettings])
def test_a_raw_token_configured_as_a_digest_is_refused_without_echoing_it(settings,
                                                                          monkeypatch):
    monkeypatch.setenv("STEWARD_TOKENS", json.dumps([{"name": "n1", "sha256": TOKEN}]))
    with pytest.raises(ValidationError, match="a token, not its digest") as err:
        settings()
    assert TOKEN not in str(err.value) and TOKEN not in repr(err.value)


def test_no_refused_value_is_echoed(monkeypatch):
    """Pydantic's own errors show the input; settings errors must not (a secret in the
    wrong place, mangled)."""
    monkeypatch.setenv("STEWARD_TOKENS", json.dumps([{"name": "n1", "sha256": "ab" + TOKEN}]))
    with pytest.raises(ValidationError) as err:
        ApiSettings()
    assert "sha256" in str(err.value) and TOKEN not in str(err.value)


def test_settings_show_no_secret(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("STEWARD_TOKENS", json.dumps([SPEC.model_dump(mode="json")]))
    monkeypatch.setenv("STEWARD_AGENT_TOKEN", TOKEN)
    monkeypatch.setenv("STEWARD_API_TOKEN", TOKEN)
    monkeypatch.setenv("STEWARD_WEBHOOKS__ADMIN_TOKEN", TOKEN)
    every = [ApiSettings(), CollectorSettings(),
             AgentSettings(collector_url="http://collector:4318"),
             ProcessorSettings(), WebhookSettings()]
    assert every[0].tokens[0].sha256 == digest(TOKEN)  # only the digest is held
    assert isinstance(every[2].token, SecretStr) and every[2].token.get_secret_value() == TOKEN
    assert every[3].api_token is not None and every[4].webhooks.admin_token is not None
    for settings in every:
        logging.getLogger("steward.test").info("settings: %r / %s / %s", settings, settings,
                                               settings.model_dump_json())
    assert "settings:" in caplog.text and TOKEN not in caplog.text
