"""Schemathesis over Steward's own OpenAPI descriptions: every operation of the API and
the collector, with generated parameters and bodies, valid (positive) and not
(negative), answers without a server error. A token with every scope goes along, so
the handlers behind the door run too.

(Driven through Hypothesis directly, one operation after another, rather than through
Schemathesis' pytest plugin, whose fixture loader does not run under pytest 9.)
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import given
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.fuzz.conftest import AUTH, FUZZ


def server_errors(app: Any) -> tuple[int, list[str]]:
    """(operations fuzzed, the failures: operation, mode and what went wrong)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @FUZZ
            @given(case=op.as_strategy(generation_mode=mode))
            def run(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=AUTH, checks=[not_a_server_error])
            try:
                run()
            except Unsatisfiable:
                continue  # no parameter to make invalid: nothing negative to send
            except Exception as exc:  # noqa: BLE001 - every operation's failure is listed
                failures.append(f"{op.label} ({mode.value}): {str(exc)[:2000]}")
    return len(operations), failures


def test_every_api_operation_answers_without_a_server_error(api_app):
    n, failures = server_errors(api_app)
    assert n >= 30 and failures == [], "\n\n".join(failures)


def test_every_collector_operation_answers_without_a_server_error(collector_app):
    n, failures = server_errors(collector_app)
    assert n >= 7 and failures == [], "\n\n".join(failures)
