"""`steward bench ...`: the load generator on the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

bench_app = typer.Typer(help="Load and soak runs against a Steward stack.",
                        no_args_is_help=True)


@bench_app.command("load")
def load(
    rate: Annotated[float, typer.Option(help="Telemetry records/s in all.")] = 5000.0,
    seconds: Annotated[float, typer.Option(help="How long to send.")] = 30.0,
    edge_nodes: Annotated[int, typer.Option(help="Simulated edge nodes.")] = 40,
    cloud_nodes: Annotated[int, typer.Option(help="Simulated cloud nodes.")] = 10,
    models: Annotated[int, typer.Option(help="Models served across the fleet.")] = 20,
    per_request: Annotated[int, typer.Option(help="Records (or OTLP points) per request.")]
    = 1000,
    workers: Annotated[int, typer.Option(help="Concurrent sending threads.")] = 4,
    otlp_every: Annotated[int, typer.Option(
        help="Every n-th request is an OTLP protobuf metrics export (0: none).")] = 5,
    canaries: Annotated[int, typer.Option(
        help="Canaries that regress during the run (rollback latency; 0: none).")] = 10,
    window_s: Annotated[int, typer.Option(help="Canary window (stack started here).")] = 1,
    grace_s: Annotated[float, typer.Option(help="Canary grace (stack started here).")] = 0.25,
    early: Annotated[bool, typer.Option(
        help="Judge canaries' open windows as records arrive (stack started here).")] = False,
    drain_s: Annotated[float, typer.Option(help="How long to wait for the backlog.")] = 60.0,
    collector_url: Annotated[str | None, typer.Option(
        help="A running collector; default: start a stack for the run.")] = None,
    api_url: Annotated[str | None, typer.Option(help="The running stack's API.")] = None,
    bootstrap_servers: Annotated[str | None, typer.Option(
        help="The running stack's Kafka (to read rollbacks on the actions topic).")] = None,
    topic_prefix: Annotated[str, typer.Option(help="The running stack's topic prefix.")] = "",
    token: Annotated[str | None, typer.Option(
        envvar="STEWARD_LOAD_TOKEN", help="Bearer token with ingest and read scopes.")] = None,
    soak: Annotated[bool, typer.Option(
        help="A soak: 10 minutes unless --seconds says otherwise.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write figures here.")]
    = None,
) -> None:
    """Drive OTLP and inference records from simulated nodes and report accepted/s,
    stored/s, arrival -> stored and crossing -> rollback latencies, and RSS over time.

    Without --collector-url it starts the whole stack (embedded broker) for the run, with
    its canaries configured. Against a running stack, rollbacks are measured only if that
    stack's canary-latency processor watches the `canary-NNN` models at `canary-site-NNN`
    (STEWARD_CANARIES as `steward.loadgen.observe.canary_specs` writes it); otherwise pass
    --canaries 0."""
    from steward import logs
    from steward.loadgen.report import figures, markdown
    from steward.loadgen.run import LoadOptions, run_load

    logs.setup("bench")
    if soak and seconds == 30.0:
        seconds = 600.0
    opts = LoadOptions(rate=rate, seconds=seconds, edge_nodes=edge_nodes,
                       cloud_nodes=cloud_nodes, models=models, per_request=per_request,
                       workers=workers, otlp_every=otlp_every, canaries=canaries,
                       window_s=window_s, grace_s=grace_s, early=early, drain_s=drain_s,
                       collector_url=collector_url, api_url=api_url,
                       bootstrap=bootstrap_servers, topic_prefix=topic_prefix, token=token)
    result = run_load(opts)
    typer.echo(markdown(result))
    if json_out is not None:
        json_out.write_text(json.dumps(figures(result), indent=1, default=str))
