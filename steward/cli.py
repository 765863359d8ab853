"""The `steward` command line: run the whole stack or any one deployable."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from steward import logs
from steward.audit_cli import audit_app, policy_backtest
from steward.fleet_cli import fleet_app
from steward.loadgen.cli import bench_app
from steward.policy_cli import policy_check, policy_eval, policy_test
from steward.rollout_cli import rollout_app
from steward.webhooks.cli import webhooks_app

app = typer.Typer(help="Steward: telemetry in, governed actions out.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
events_app = typer.Typer(help="Look at the events Steward emitted.", no_args_is_help=True)
app.add_typer(events_app, name="events")
token_app = typer.Typer(help="Issue access tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")
reference_app = typer.Typer(help="Reference datasets that drift is measured against.",
                            no_args_is_help=True)
app.add_typer(reference_app, name="reference")
app.add_typer(audit_app, name="audit")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(rollout_app, name="rollout")
app.add_typer(fleet_app, name="fleet")
app.add_typer(bench_app, name="bench")
policy_app = typer.Typer(help="Governance policies.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
policy_app.command("backtest")(policy_backtest)
policy_app.command("test")(policy_test)
policy_app.command("check")(policy_check)
policy_app.command("eval")(policy_eval)

Bootstrap = Annotated[str | None, typer.Option(
    help="Use this Kafka (host:port,...) instead of starting the embedded broker.")]


def _overrides(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _kafka(bootstrap: str | None) -> dict[str, Any]:
    return {"kafka": {"bootstrap_servers": bootstrap}} if bootstrap else {}


@app.command()
def up(
    demo: Annotated[bool, typer.Option(help="Also run a simulated fleet with a bad canary.")] =
    False,
    bootstrap_servers: Bootstrap = None,
    data_dir: Annotated[Path, typer.Option(help="Where the store and logs live.")] =
    Path("data"),
    otlp_port: Annotated[int, typer.Option(help="Collector (OTLP/HTTP) port.")] = 4318,
    api_port: Annotated[int, typer.Option(help="API port.")] = 8080,
    kafka_port: Annotated[int, typer.Option(help="Embedded broker port (0: any free).")] = 9092,
    host: Annotated[str, typer.Option(help="Address every service binds to.")] = "127.0.0.1",
    ready_timeout: Annotated[float, typer.Option(
        help="Seconds each service may take to answer /readyz (slow or busy machines).")] = 120.0,
) -> None:
    """Start the whole service on this machine (embedded broker unless --bootstrap-servers)."""
    from steward import demo as demo_mod
    from steward.up import Stack, UpOptions

    logs.setup("up")
    opts = UpOptions(bootstrap_servers=bootstrap_servers, data_dir=data_dir, otlp_port=otlp_port,
                     api_port=api_port, kafka_port=kafka_port, host=host, demo=demo,
                     ready_timeout_s=ready_timeout,
                     canaries=[demo_mod.DEMO_CANARY] if demo else [],
                     extra_env=demo_mod.DEMO_DRIFT_ENV if demo else {},
                     agent_env=demo_mod.DEMO_AGENT_ENV if demo else None)
    stack = Stack(opts)
    stop = threading.Event()
    from steward.lifecycle import on_signals
    on_signals(stop.set)
    try:
        stack.start()
        if demo:
            demo_mod.register_reference(stack.api_url)
            cfg = demo_mod.DemoConfig(collector_url=stack.collector_url,
                                      agent_url=stack.agent_url, api_url=stack.api_url)
            threading.Thread(target=demo_mod.run, args=(cfg, stop), daemon=True,
                             name="demo").start()
            typer.echo(f"Demo fleet running. Watch for a rollback of {demo_mod.MODEL} "
                       f"{demo_mod.CANARY} and a retraining request for {demo_mod.BASELINE} "
                       f"(drift at {demo_mod.DRIFT_SITE}, which sends feature profiles "
                       f"through an edge agent at {stack.agent_url}: "
                       f"curl '{stack.api_url}/drift?site={demo_mod.DRIFT_SITE}'), then "
                       f"the retrained {demo_mod.RETRAINED} registered for it, canaried at "
                       f"{demo_mod.ROLLOUT_SITE} and promoted; "
                       "Ctrl-C stops everything.")
        stack.watch_events(stop)
    finally:
        stop.set()
        stack.stop()


@app.command()
def collector(
    bootstrap_servers: Bootstrap = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default 4318).")] = None,
    host: Annotated[str | None, typer.Option(help="Listen address.")] = None,
) -> None:
    """Run the collector (OTLP/HTTP and JSON ingest)."""
    from collector.main import main
    from collector.settings import CollectorSettings

    logs.setup("collector")
    main(CollectorSettings(**_overrides(port=port, host=host), **_kafka(bootstrap_servers)))


@app.command()
def agent(
    collector_url: Annotated[str | None, typer.Option(
        help="Collector base URL, e.g. https://steward.example.com:4318.")] = None,
    spool_dir: Annotated[Path | None, typer.Option(
        help="Directory of the spool (created if missing; default data/agent).")] = None,
    port: Annotated[int | None, typer.Option(help="Local intake port (default 4318).")] = None,
    host: Annotated[str | None, typer.Option(help="Local intake address.")] = None,
    max_spool_bytes: Annotated[int | None, typer.Option(
        help="Bound on the data waiting in the spool (default 1 GiB).")] = None,
    full_policy: Annotated[str | None, typer.Option(
        help="When the spool is full: drop-oldest (default) or refuse-newest.")] = None,
    token_file: Annotated[Path | None, typer.Option(
        help="File holding the collector token (else STEWARD_AGENT_TOKEN).")] = None,
) -> None:
    """Run the edge agent: local OTLP/JSON intake, a durable spool, forwarding upstream."""
    from collector.agent.main import main
    from collector.agent.settings import load

    logs.setup("agent")
    main(load(token_file, **_overrides(collector_url=collector_url, spool_dir=spool_dir,
                                       port=port, host=host, max_spool_bytes=max_spool_bytes,
                                       full_policy=full_policy)))


@app.command()
def api(
    bootstrap_servers: Bootstrap = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default 8080).")] = None,
    host: Annotated[str | None, typer.Option(help="Listen address.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Directory of the DuckDB file.")] = None,
) -> None:
    """Run the API and the sink that owns the store."""
    from api.main import main
    from api.settings import ApiSettings

    logs.setup("api")
    main(ApiSettings(**_overrides(port=port, host=host, data_dir=data_dir),
                     **_kafka(bootstrap_servers)))


@app.command()
def processor(
    name: Annotated[str, typer.Argument(help="Processor name, e.g. canary-latency.")],
    bootstrap_servers: Bootstrap = None,
) -> None:
    """Run one processor as a member of its consumer group (run more to scale out)."""
    from processors.main import main
    from processors.settings import ProcessorSettings

    logs.setup(name)
    main(name, ProcessorSettings(**_kafka(bootstrap_servers)))


@app.command("demo")
def demo_cmd(
    collector_url: Annotated[str, typer.Option(help="Collector base URL.")] =
    "http://127.0.0.1:4318",
    duration: Annotated[float, typer.Option(help="Seconds to run (0: until Ctrl-C).")] = 0.0,
    rate: Annotated[int, typer.Option(help="Cloud inferences per second.")] = 60,
    api_url: Annotated[str | None, typer.Option(
        help="Steward API: register the retrained version once retraining is requested "
             "(needs the demo's rollout template in the rollout processor).")] = None,
) -> None:
    """Send a simulated fleet's traffic (edge and cloud, with a regressing canary)."""
    from steward import demo as demo_mod

    logs.setup("demo")
    sent = demo_mod.run(demo_mod.DemoConfig(collector_url=collector_url, duration_s=duration,
                                            rate=rate, api_url=api_url))
    typer.echo(json.dumps(sent))


@app.command("gpu-sampler")
def gpu_sampler(
    site: Annotated[str, typer.Option(help="Site the samples are from.")],
    collector_url: Annotated[str, typer.Option(help="Collector base URL.")] =
    "http://127.0.0.1:4318",
    tier: Annotated[str, typer.Option(help="edge or cloud.")] = "cloud",
    node: Annotated[str | None, typer.Option(help="Node name (default: this host).")] = None,
    team: Annotated[str | None, typer.Option(help="Team the GPUs are allocated to.")] = None,
    interval: Annotated[float, typer.Option(help="Seconds between samples.")] = 15.0,
    once: Annotated[bool, typer.Option(help="Sample once and exit.")] = False,
) -> None:
    """Read this machine's GPUs and MIG instances through NVML and post them to the collector.
    Without an NVIDIA GPU and driver it says so and exits with code 3."""
    import socket

    from steward.gpu import nvml, sampler

    logs.setup("gpu-sampler")
    try:
        handle = nvml.open_nvml()
    except nvml.NoGpu as exc:
        typer.echo(f"error: nothing to sample: {exc}", err=True)
        raise typer.Exit(3) from None
    who = nvml.Identity(site=site, tier=tier, node=node or socket.gethostname(), team=team)
    cfg = sampler.SamplerConfig(collector_url=collector_url, who=who, interval_s=interval)
    stop = threading.Event()
    from steward.lifecycle import on_signals
    on_signals(stop.set)
    typer.echo(json.dumps({"accepted": sampler.run(cfg, handle, stop, once=once)}))


@events_app.command("tail")
def events_tail(
    bootstrap_servers: Annotated[str, typer.Option(help="Kafka to read from.")] =
    "127.0.0.1:9092",
    topic: Annotated[str, typer.Option(help="actions, alerts or deadletter.")] = "actions",
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest event.")] = False,
    topic_prefix: Annotated[str, typer.Option(help="Deployment topic prefix.")] = "",
    count: Annotated[int, typer.Option(help="Stop after this many (0: never).")] = 0,
) -> None:
    """Print events from Kafka as JSON lines, as they arrive."""
    from steward.bus.tail import tail

    logging.basicConfig(level=logging.WARNING)
    for line in tail(bootstrap_servers, topic, topic_prefix, from_beginning, count):
        typer.echo(line)


@token_app.command("new")
def token_new(
    name: Annotated[str, typer.Option(help="Who holds it (logged, e.g. the node name).")],
    scope: Annotated[list[str], typer.Option(help="ingest, read or admin (repeatable).")] =
    ["ingest"],  # noqa: B006 - typer reads the default, nobody mutates it
    site: Annotated[str | None, typer.Option(help="Bind to one site's records.")] = None,
) -> None:
    """Print a new token (give it to the node) and its hashed entry (add it to STEWARD_TOKENS)."""
    from steward.auth import TokenSpec, new_token

    bad = sorted(set(scope) - {"ingest", "read", "admin"})
    if bad:
        raise typer.BadParameter(f"unknown scope(s) {', '.join(bad)}; use ingest, read, admin")
    token, spec = new_token(name, scope, site)  # type: ignore[arg-type]
    typer.echo(f"token: {token}")
    entry = TokenSpec.model_validate(spec).model_dump(mode="json")
    entry["scopes"] = sorted(entry["scopes"])
    typer.echo(f"entry: {json.dumps(entry)}")


@reference_app.command("add")
def reference_add(
    path: Annotated[Path, typer.Argument(help="A .csv or .parquet file.", exists=True,
                                         dir_okay=False, readable=True)],
    model: Annotated[str, typer.Option(help="Model name.")],
    version: Annotated[str, typer.Option(help="Model version.")],
    categorical: Annotated[list[str], typer.Option(help="A categorical column (repeatable).")] =
    [],  # noqa: B006 - typer reads the default, nobody mutates it
    prediction: Annotated[str | None, typer.Option(help="The prediction column.")] = None,
    api_url: Annotated[str, typer.Option(help="Steward API base URL.")] = "http://127.0.0.1:8080",
    token: Annotated[str | None, typer.Option(envvar="STEWARD_API_TOKEN",
                                              help="Admin token for the API.")] = None,
) -> None:
    """Register (or replace) the reference of a model version from a file."""
    import httpx

    ctype = "application/vnd.apache.parquet" if path.suffix.lower() == ".parquet" else "text/csv"
    params: dict[str, Any] = {"categorical": categorical}
    if prediction:
        params["prediction"] = prediction
    headers = {"content-type": ctype} | ({"authorization": f"Bearer {token}"} if token else {})
    resp = httpx.put(f"{api_url.rstrip('/')}/references/{model}/{version}",
                     content=path.read_bytes(), headers=headers, params=params, timeout=120)
    if resp.status_code != 201:
        typer.echo(f"error: {resp.status_code}: {resp.json().get('detail', resp.text)}", err=True)
        raise typer.Exit(2)
    summary = resp.json()
    typer.echo(f"reference {model} {version}: {summary['rows']} rows, columns "
               + ", ".join(f"{c} ({k})" for c, k in summary["columns"].items()))


def main() -> None:
    """Console entry point: a Steward error is one clear line and exit code 2, not a trace."""
    from steward.errors import StewardError

    try:
        app()
    except StewardError as exc:
        typer.echo(f"error: {exc.reason}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
