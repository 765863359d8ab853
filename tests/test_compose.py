"""Static checks of docker-compose.yml, the Dockerfile and .dockerignore (no Docker needed).

They catch what `docker compose up` would only show at run time: a command that names no
`steward` subcommand, a bootstrap address the broker does not advertise, a scaled service
that cannot scale, a store without a volume, a secret with a silent default.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command

import steward.cli
from processors.registry import PROCESSORS
from steward.up import UpOptions

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

PROCESSOR_SERVICES = ("processor", "drift-judge", "retrain-trigger", "governance-gate",
                      "gpu-usage", "gpu-budget", "rollout-samples", "rollout", "rollout-usage",
                      "fleet-sightings", "fleet")
STEWARD_SERVICES = ("collector", *PROCESSOR_SERVICES, "api")
PUBLISHED = {"collector": 4318, "api": 8080}
HEALTHCHECKED = ("kafka", "collector", "api")

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}, ${VAR:+alt}; $$ escapes.
_INTERP = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")


# ---------------------------------------------------------------------------------- helpers

@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "docker-compose.yml is not a YAML mapping"
    assert isinstance(data.get("services"), dict), "docker-compose.yml has no `services` mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def cli_commands() -> dict[str, Any]:
    """`steward`'s subcommands as typer registers them (typer may vendor its own click)."""
    commands = getattr(get_command(steward.cli.app), "commands", None)
    assert commands, "steward.cli.app is not a command group with subcommands"
    return dict(commands)


def interpolate(value: Any) -> Any:
    """Resolve compose interpolation the way an empty environment would (defaults win)."""
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        op, arg = m["op"], m["arg"] or ""
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            return f"<required:{m['name']}>"
        return ""

    return _INTERP.sub(sub, value.replace("$$", "\0")).replace("\0", "$")


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(interpolate(v)) for k, v in env.items()}


def command_of(name: str, service: dict[str, Any]) -> list[str]:
    cmd = service.get("command")
    assert cmd, f"service {name!r} has no `command`"
    return shlex.split(cmd) if isinstance(cmd, str) else [str(interpolate(c)) for c in cmd]


def option_value(argv: list[str], option: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == option and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None


def volumes_of(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(type, source, target) for each mount, short or long syntax."""
    mounts = []
    for v in service.get("volumes") or []:
        if isinstance(v, str):
            parts = interpolate(v).split(":")
            if len(parts) == 1:
                mounts.append(("volume", "", parts[0]))
                continue
            source, target = parts[0], parts[1]
            kind = "bind" if source.startswith((".", "/", "~")) else "volume"
            mounts.append((kind, source, target))
        else:
            mounts.append((v.get("type", "volume"), str(interpolate(v.get("source", ""))),
                           str(interpolate(v["target"]))))
    return mounts


def published_ports(service: dict[str, Any]) -> dict[int, int]:
    """{container port: host port} for each published port, short or long syntax."""
    ports = {}
    for p in service.get("ports") or []:
        if isinstance(p, dict):
            ports[int(p["target"])] = int(interpolate(p.get("published", p["target"])))
            continue
        spec = str(interpolate(p)).split("/")[0]
        parts = spec.rsplit(":", 2)
        target = int(parts[-1])
        ports[target] = int(parts[-2]) if len(parts) > 1 and parts[-2] else target
    return ports


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """'PLAINTEXT://kafka:9092,CONTROLLER://:9093' -> {name: (host, port)}."""
    out = {}
    for item in filter(None, (s.strip() for s in value.split(","))):
        name, _, address = item.partition("://")
        host, _, port = address.rpartition(":")
        out[name] = (host, int(port))
    return out


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    assert DOCKERFILE.is_file(), f"{DOCKERFILE} is missing"
    joined, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    if current:
        joined.append(current)
    out = []
    for line in joined:
        instruction, _, args = line.partition(" ")
        out.append((instruction.upper(), args.strip()))
    return out


# ------------------------------------------------------------------------------ the services

def test_expected_services_exist(services):
    missing = {"kafka", *STEWARD_SERVICES} - set(services)
    assert not missing, f"docker-compose.yml lacks services: {sorted(missing)}"


def test_every_processor_has_a_scalable_service(services):
    """What `steward up` runs, and every other registered processor (the GPU ones), runs
    in compose too, each in a service of its own (its own consumer group to scale)."""
    ran = {command_of(name, services[name])[1]: name for name in PROCESSOR_SERVICES}
    assert len(ran) == len(PROCESSOR_SERVICES), f"two services run one processor: {ran}"
    wanted = {part for name in UpOptions().processors for part in name.split("+")}
    wanted |= set(PROCESSORS)  # `up` runs some as one consumer; compose scales each alone
    assert wanted <= set(ran), f"processors without a service: {sorted(wanted - set(ran))}"
    others = {command_of(n, s)[1] for n, s in services.items() if n not in PROCESSOR_SERVICES
              and s.get("command") and command_of(n, s)[0] == "processor"}
    assert not others, f"processor services missing from PROCESSOR_SERVICES: {others}"


def test_own_telemetry_is_optional_and_off_by_default(services):
    """Every Steward service passes OTEL_EXPORTER_OTLP_ENDPOINT through, empty unless set."""
    for name in STEWARD_SERVICES:
        raw = (services[name].get("environment") or {}).get("OTEL_EXPORTER_OTLP_ENDPOINT")
        assert raw == "${OTEL_EXPORTER_OTLP_ENDPOINT:-}", \
            f"{name}: OTEL_EXPORTER_OTLP_ENDPOINT should be passed through, is {raw!r}"
        assert env_of(services[name])["OTEL_EXPORTER_OTLP_ENDPOINT"] == ""
        assert "OTEL_SERVICE_NAME" not in env_of(services[name]), \
            f"{name}: one OTEL_SERVICE_NAME would give every service the same name"


def test_compose_spec_shape(compose):
    assert "version" not in compose, "drop the obsolete top-level `version:` key (Compose spec)"
    unknown = {k for k in compose if not k.startswith("x-")} - {
        "name", "services", "volumes", "networks", "configs", "secrets", "include", "models"}
    assert not unknown, f"unknown top-level keys in docker-compose.yml: {sorted(unknown)}"


def test_kafka_is_official_image_in_kraft_mode(compose, services):
    kafka = services["kafka"]
    image = str(kafka.get("image", ""))
    assert image.split(":")[0] == "apache/kafka", \
        f"kafka should use the official apache/kafka image, not {image!r}"
    env = env_of(kafka)
    roles = env.get("KAFKA_PROCESS_ROLES", "")
    assert "controller" in roles.split(","), \
        f"kafka is not in KRaft mode: KAFKA_PROCESS_ROLES={roles!r} lacks 'controller'"
    assert env.get("KAFKA_CONTROLLER_QUORUM_VOTERS"), "kafka has no KAFKA_CONTROLLER_QUORUM_VOTERS"
    assert env.get("KAFKA_CONTROLLER_LISTENER_NAMES") in listeners(env["KAFKA_LISTENERS"]), \
        "KAFKA_CONTROLLER_LISTENER_NAMES does not name one of KAFKA_LISTENERS"
    assert "zookeeper" not in json.dumps(compose).lower(), \
        "docker-compose.yml mentions ZooKeeper; the broker must run in KRaft mode"


def test_kafka_single_node_settings(services):
    env = env_of(services["kafka"])
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        assert env.get(key) == "1", f"single-node kafka needs {key}=1, has {env.get(key)!r}"
    assert env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "").lower() == "false", \
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE should be false (Steward creates its topics)"
    inter = env.get("KAFKA_INTER_BROKER_LISTENER_NAME")
    assert inter in listeners(env.get("KAFKA_ADVERTISED_LISTENERS", "")), \
        f"KAFKA_INTER_BROKER_LISTENER_NAME={inter!r} is not an advertised listener"


def test_kafka_cluster_id_default_is_valid(services):
    raw = str(services["kafka"].get("environment", {}).get("CLUSTER_ID", ""))
    m = _INTERP.fullmatch(raw)
    assert m and m["name"] == "KAFKA_CLUSTER_ID" and m["op"] == ":-", \
        f"kafka CLUSTER_ID should be ${{KAFKA_CLUSTER_ID:-<id>}}, is {raw!r}"
    default = m["arg"]
    assert len(default) == 22, f"default cluster id {default!r} is not 22 characters"
    assert len(base64.urlsafe_b64decode(default + "==")) == 16, \
        f"default cluster id {default!r} is not a base64 (URL-safe) 16-byte UUID"


def test_kafka_log_dirs_on_a_named_volume(compose, services):
    env = env_of(services["kafka"])
    log_dirs = env.get("KAFKA_LOG_DIRS", "")
    assert log_dirs, "kafka has no KAFKA_LOG_DIRS; its data would live in /tmp"
    targets = {target: source for kind, source, target in volumes_of(services["kafka"])
               if kind == "volume" and source}
    for d in log_dirs.split(","):
        assert d in targets, f"kafka log dir {d} is not on a named volume"
        assert targets[d] in (compose.get("volumes") or {}), \
            f"volume {targets[d]!r} is not declared under top-level `volumes`"


def test_steward_services_reach_the_advertised_listener(services):
    kafka_env = env_of(services["kafka"])
    advertised = set(listeners(kafka_env.get("KAFKA_ADVERTISED_LISTENERS", "")).values())
    assert advertised, "kafka has no KAFKA_ADVERTISED_LISTENERS"
    for host, _port in advertised:
        assert host == "kafka", \
            f"kafka advertises host {host!r}; other containers know it as 'kafka'"
    for name in STEWARD_SERVICES:
        bootstrap = env_of(services[name]).get("STEWARD_KAFKA__BOOTSTRAP_SERVERS")
        assert bootstrap, f"{name} has no STEWARD_KAFKA__BOOTSTRAP_SERVERS"
        for server in bootstrap.split(","):
            host, _, port = server.strip().rpartition(":")
            assert (host, int(port)) in advertised, \
                f"{name} bootstraps from {server!r}, which kafka does not advertise " \
                f"({sorted(advertised)})"


def test_steward_services_wait_for_a_healthy_broker(services):
    for name in STEWARD_SERVICES:
        deps = services[name].get("depends_on")
        assert isinstance(deps, dict) and "kafka" in deps, \
            f"{name} must depend on kafka (long syntax, with a condition)"
        condition = (deps["kafka"] or {}).get("condition")
        assert condition == "service_healthy", \
            f"{name} depends on kafka with condition {condition!r}, not service_healthy"


def test_steward_services_build_the_one_image(services):
    for name in STEWARD_SERVICES:
        svc = services[name]
        assert svc.get("build"), f"{name} has no `build` (should build the repo's Dockerfile)"
        assert svc.get("image") == "steward:latest", \
            f"{name} should be tagged steward:latest, is {svc.get('image')!r}"
        assert svc.get("restart") == "unless-stopped", \
            f"{name} has restart {svc.get('restart')!r}, want unless-stopped"
        assert "entrypoint" not in svc, f"{name} overrides the image's `steward` entrypoint"


def test_commands_name_real_steward_subcommands(services, cli_commands):
    for name in STEWARD_SERVICES:
        argv = command_of(name, services[name])
        sub = argv[0]
        assert sub in cli_commands, \
            f"{name} runs `steward {sub}`, but steward has only {sorted(cli_commands)}"
        cmd = cli_commands[sub]
        known = {opt for p in cmd.params if p.param_type_name == "option"
                 for opt in (*p.opts, *p.secondary_opts)}
        for arg in argv[1:]:
            flag = arg.split("=", 1)[0]
            if flag.startswith("--"):
                assert flag in known, \
                    f"{name}: `steward {sub}` has no option {flag} (has {sorted(known)})"
    for name in PROCESSOR_SERVICES:
        processor_argv = command_of(name, services[name])
        assert processor_argv[0] == "processor" and len(processor_argv) > 1, \
            f"{name} service should run `steward processor NAME`, runs {processor_argv}"
        assert processor_argv[1] in PROCESSORS, \
            f"processor {processor_argv[1]!r} is not registered (known: {sorted(PROCESSORS)})"


def test_servers_listen_on_all_interfaces(services):
    for name, port in PUBLISHED.items():
        argv = command_of(name, services[name])
        assert option_value(argv, "--host") == "0.0.0.0", \
            f"{name} must listen on 0.0.0.0 in a container, command is {argv}"
        assert option_value(argv, "--port") == str(port), \
            f"{name} should listen on {port}, command is {argv}"


def test_published_ports(services):
    for name, port in PUBLISHED.items():
        ports = published_ports(services[name])
        assert ports.get(port) == port, \
            f"{name} should publish container port {port} as host port {port}, has {ports}"


def test_api_is_a_single_writer_with_a_volume_at_its_data_dir(compose, services):
    api = services["api"]
    replicas = (api.get("deploy") or {}).get("replicas", 1)
    assert int(replicas) == 1, f"api must run exactly one replica (DuckDB), has {replicas}"
    assert "scale" not in api or int(api["scale"]) == 1, "api must not be scaled (DuckDB)"
    data_dir = option_value(command_of("api", api), "--data-dir")
    assert data_dir, "api command has no --data-dir; the store would land in the container"
    mounts = {target: (kind, source) for kind, source, target in volumes_of(api)}
    assert data_dir in mounts, f"api has no volume at its --data-dir {data_dir}"
    kind, source = mounts[data_dir]
    assert kind == "volume" and source in (compose.get("volumes") or {}), \
        f"api's {data_dir} should be a declared named volume, is {kind} {source!r}"


@pytest.mark.parametrize("name", PROCESSOR_SERVICES)
def test_processor_is_scalable(services, name):
    processor = services[name]
    assert "container_name" not in processor, \
        "processor has a container_name, so `--scale processor=N` would fail"
    assert not processor.get("ports"), \
        f"processor publishes {processor['ports']}; replicas would clash on the host port"
    replicas = (processor.get("deploy") or {}).get("replicas")
    assert replicas is None or int(replicas) >= 1, f"processor replicas {replicas} < 1"


def test_healthchecks(services):
    for name in HEALTHCHECKED:
        check = services[name].get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
    kafka_test = " ".join(services["kafka"]["healthcheck"]["test"])
    assert "kafka-broker-api-versions.sh" in kafka_test, \
        f"kafka healthcheck should ask the broker for API versions, is {kafka_test!r}"
    for name, port in PUBLISHED.items():
        test = services[name]["healthcheck"]["test"]
        text = " ".join(test) if isinstance(test, list) else test
        assert "curl" not in text and "wget" not in text, \
            f"{name} healthcheck uses curl/wget, which the slim image lacks: {text!r}"
        assert f":{port}/readyz" in text, f"{name} healthcheck should probe :{port}/readyz"


def test_build_contexts_and_bind_mounts_exist(services):
    for name, svc in services.items():
        build = svc.get("build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            path = (REPO / context).resolve()
            assert path.is_dir(), f"{name}: build context {context!r} does not exist"
            dockerfile = "Dockerfile" if isinstance(build, str) else \
                build.get("dockerfile", "Dockerfile")
            assert (path / dockerfile).is_file(), f"{name}: {path / dockerfile} does not exist"
        for kind, source, target in volumes_of(svc):
            if kind == "bind":
                path = (REPO / source).resolve()
                assert path.exists(), f"{name}: mounts {source!r} at {target}, which is missing"
                assert path.is_relative_to(REPO), f"{name}: mounts {source!r} from outside the repo"
        for key in ("env_file",):
            for f in ([svc[key]] if isinstance(svc.get(key), str) else svc.get(key) or []):
                path = f if isinstance(f, str) else f["path"]
                required = isinstance(f, str) or f.get("required", True)
                assert not required or (REPO / path).is_file(), \
                    f"{name}: env_file {path!r} is missing (mark it required: false?)"


def test_interpolation_never_silently_empty():
    """A bare ${VAR} becomes '' when unset; secrets must use ${VAR:?why}, the rest a default."""
    text = "\n".join(line for line in COMPOSE_FILE.read_text().splitlines()
                     if not line.lstrip().startswith("#"))
    bare = [m[0] for m in _INTERP.finditer(text.replace("$$", "")) if not m["op"]]
    assert not bare, f"bare interpolations (give a :- default or a :? message): {bare}"
    unbraced = re.findall(r"(?<!\$)\$[A-Za-z_][A-Za-z0-9_]*", text.replace("$$", ""))
    assert not unbraced, f"unbraced interpolations: {unbraced}"


def test_no_secret_has_a_default(services):
    secretish = re.compile(r"(PASSWORD|SECRET|TOKEN|API_KEY|PRIVATE_KEY|CREDENTIAL)", re.I)
    for name, svc in services.items():
        for key, value in (svc.get("environment") or {}).items():
            if secretish.search(str(key)):
                m = _INTERP.fullmatch(str(value))
                assert m and m["op"] in (":?", "?"), \
                    f"{name}: secret {key} must be ${{VAR:?message}}, is {value!r}"


# ------------------------------------------------------------------- Dockerfile, .dockerignore

def test_dockerfile_installs_the_project_and_runs_steward():
    instructions = dockerfile_instructions()
    froms = [args for ins, args in instructions if ins == "FROM"]
    assert froms and froms[-1].split()[0].startswith("python:3.11"), \
        f"final stage should be FROM python:3.11-slim, is {froms}"
    runs = [args for ins, args in instructions if ins == "RUN"]
    assert any(re.search(r"pip install\b[^&;|]*\s\.(\s|$)", r) for r in runs), \
        f"no `RUN pip install ... .` installs the project: {runs}"
    assert any(ins == "COPY" for ins, _ in instructions), "the Dockerfile copies no source"
    entrypoints = [args for ins, args in instructions if ins == "ENTRYPOINT"]
    assert entrypoints, "the Dockerfile has no ENTRYPOINT"
    assert json.loads(entrypoints[-1]) == ["steward"], \
        f'ENTRYPOINT should be ["steward"] (exec form), is {entrypoints[-1]}'
    users = [args for ins, args in instructions if ins == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), \
        f"the image should run as a non-root USER, has {users}"


def test_dockerignore_keeps_local_state_out():
    assert DOCKERIGNORE.is_file(), f"{DOCKERIGNORE} is missing"
    patterns = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    for needed in (".venv", ".git", "data", ".env"):
        assert needed in patterns, f".dockerignore should exclude {needed}"
    assert not patterns & {"pyproject.toml", "steward", "api", "collector", "processors"}, \
        ".dockerignore excludes files `pip install .` needs"


def test_the_observability_and_policy_services(services):
    """OPA serves rules/, Prometheus scrapes with the shipped config and alert rules, Grafana
    gets the provisioned datasource and dashboards; each has a healthcheck."""
    for name in ("opa", "prometheus", "grafana"):
        assert name in services, f"docker-compose.yml lacks {name}"
        assert services[name].get("healthcheck"), f"{name} has no healthcheck"
    binds = {name: {src.lstrip("./"): dst for kind, src, dst in volumes_of(services[name])
                    if kind == "bind"} for name in ("opa", "prometheus", "grafana")}
    assert binds["opa"]["rules"] == "/rules"
    config = option_value(services["prometheus"]["command"], "--config.file")
    assert config == binds["prometheus"]["dashboards/prometheus"] + "/prometheus.yml"
    alerts = (Path(config).parent / "../alerts").resolve(strict=False)
    assert str(alerts) == binds["prometheus"]["dashboards/alerts"]
    assert binds["grafana"]["dashboards/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load((REPO / "dashboards/provisioning/dashboards/steward.yml")
                              .read_text())["providers"][0]["options"]["path"]
    assert binds["grafana"]["dashboards/json"] == provider
    gate = services["governance-gate"]
    assert gate["environment"]["STEWARD_GOVERNANCE__OPA_URL"] == "http://opa:8181"
    assert gate["depends_on"]["opa"]["condition"] == "service_healthy"
