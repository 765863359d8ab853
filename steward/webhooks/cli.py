"""`steward webhooks run | list-dead | replay`.

`list-dead` and `replay` open the outbox file directly (SQLite allows a second process
beside the running service), so they work whether or not the service runs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from steward.webhooks.settings import WebhookSettings

webhooks_app = typer.Typer(help="Alert webhooks: delivery service and dead letters.",
                           no_args_is_help=True)

DataDir = Annotated[Path | None, typer.Option(
    help="Directory of the outbox (default: STEWARD_DATA_DIR or data).")]
Since = Annotated[datetime | None, typer.Option(
    help="Only deliveries that died at or after this time (ISO 8601, UTC if no zone).")]
SubscriptionOpt = Annotated[str | None, typer.Option("--subscription",
                                                     help="Only this subscription id.")]


def _settings(data_dir: Path | None, bootstrap: str | None = None) -> WebhookSettings:
    from steward.webhooks.settings import WebhookSettings

    extra: dict = {"data_dir": data_dir} if data_dir else {}
    if bootstrap:
        extra["kafka"] = {"bootstrap_servers": bootstrap}
    return WebhookSettings(**extra)


def _epoch(since: datetime | None) -> float | None:
    if since is None:
        return None
    return (since if since.tzinfo else since.replace(tzinfo=UTC)).timestamp()


@webhooks_app.command("run")
def run(
    bootstrap_servers: Annotated[str | None, typer.Option(
        help="Use this Kafka (host:port,...).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Run the delivery service: consume actions and alerts, deliver signed webhooks."""
    from steward import logs
    from steward.webhooks.main import main

    logs.setup("webhooks")
    main(_settings(data_dir, bootstrap_servers))


@webhooks_app.command("list-dead")
def list_dead(subscription: SubscriptionOpt = None, since: Since = None,
              data_dir: DataDir = None,
              limit: Annotated[int, typer.Option(help="At most this many.")] = 1000) -> None:
    """Print dead-lettered deliveries as JSON lines (no bodies, no secrets)."""
    from steward.webhooks.outbox import Outbox

    outbox = Outbox(_settings(data_dir).outbox_path)
    try:
        for d in outbox.list_dead(subscription, _epoch(since), limit):
            typer.echo(json.dumps({
                "webhook_id": d.id, "subscription_id": d.subscription_id,
                "event_id": d.event_id, "event_type": d.event_type, "attempts": d.attempts,
                "last_status": d.last_status, "last_error": d.last_error,
                "died_at": datetime.fromtimestamp(d.finished_at or 0, UTC).isoformat()}))
    finally:
        outbox.close()


@webhooks_app.command("replay")
def replay(subscription: SubscriptionOpt = None, since: Since = None,
           data_dir: DataDir = None) -> None:
    """Queue dead-lettered deliveries again (due now, a fresh attempt budget, same ids)."""
    from steward.webhooks.outbox import Outbox

    outbox = Outbox(_settings(data_dir).outbox_path)
    try:
        n = outbox.replay(subscription, _epoch(since))
    finally:
        outbox.close()
    typer.echo(json.dumps({"requeued": n}))
