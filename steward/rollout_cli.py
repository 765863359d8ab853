"""`steward rollout start|resume|abort|show`: drive rollouts through the API.

The CLI never talks to Kafka: the API validates a declaration and puts it on the rollouts
topic, so a rollout started here is the same record as one posted by a pipeline. The spec
file is checked locally first (the same `RolloutSpec` the API validates), so a typo is a
clear error before anything is sent; `declared_at` is left to the API's clock when absent.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

rollout_app = typer.Typer(help="Declare, resume, abort and inspect progressive rollouts.",
                          no_args_is_help=True)

Api = Annotated[str, typer.Option("--api", envvar="STEWARD_API_URL",
                                  help="Steward API base URL.")]
Token = Annotated[str | None, typer.Option(envvar="STEWARD_API_TOKEN",
                                           help="Bearer token for the API.")]


def load_spec(path: Path) -> dict[str, Any]:
    """A rollout spec from a .json, .yaml or .yml file, validated as `RolloutSpec`
    (raises ValueError naming the problem); returned as the body to post."""
    from steward.schema.rollout import RolloutSpec

    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        body = yaml.safe_load(text)
    else:
        body = json.loads(text)
    if not isinstance(body, dict):
        raise ValueError(f"{path}: a rollout spec is a mapping, not {type(body).__name__}")
    RolloutSpec.model_validate({"declared_at": datetime.now(UTC), **body})
    return json.loads(json.dumps(body, default=str))


def _call(method: str, api: str, path: str, token: str | None, **kwargs: Any) -> Any:
    """One API call; an error answer is one line on stderr and exit code 2."""
    import httpx

    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        resp = httpx.request(method, f"{api.rstrip('/')}{path}", headers=headers, timeout=30,
                             **kwargs)
    except httpx.HTTPError as exc:
        typer.echo(f"error: API unreachable: {exc}", err=True)
        raise typer.Exit(2) from None
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("detail", resp.text)
        except ValueError:
            detail = resp.text
        typer.echo(f"error: {resp.status_code}: {detail}", err=True)
        raise typer.Exit(2)
    return resp.json()


@rollout_app.command("start")
def start(
    spec: Annotated[Path, typer.Option(help="Rollout spec (.json, .yaml or .yml).",
                                       exists=True, dir_okay=False, readable=True)],
    api: Api = "http://127.0.0.1:8080",
    token: Token = None,
) -> None:
    """Declare a rollout: the rollout processor starts judging it from its first samples."""
    try:
        body = load_spec(spec)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--spec") from None
    typer.echo(json.dumps(_call("POST", api, "/rollouts", token, json=body)))


def _command(command: str, rollout_id: str, model: str, reason: str, api: str,
             token: str | None) -> None:
    params = {"model": model, "reason": reason}
    typer.echo(json.dumps(_call("POST", api, f"/rollouts/{rollout_id}/{command}", token,
                                params=params)))


Model = Annotated[str, typer.Option(help="The rollout's model (its partition key).")]
Reason = Annotated[str, typer.Option(help="Why (kept with the command).")]


@rollout_app.command("resume")
def resume(rollout_id: str, model: Model, reason: Reason = "", api: Api = "http://127.0.0.1:8080",
           token: Token = None) -> None:
    """Resume a paused rollout (its step's counters start over)."""
    _command("resume", rollout_id, model, reason, api, token)


@rollout_app.command("abort")
def abort(rollout_id: str, model: Model, reason: Reason = "", api: Api = "http://127.0.0.1:8080",
          token: Token = None) -> None:
    """Abort a rollout: proposes a rollback to every target."""
    _command("abort", rollout_id, model, reason, api, token)


@rollout_app.command("show")
def show(rollout_id: str, api: Api = "http://127.0.0.1:8080", token: Token = None) -> None:
    """Where a rollout stands and its actions so far, as JSON."""
    typer.echo(json.dumps(_call("GET", api, f"/rollouts/{rollout_id}", token), indent=2))
