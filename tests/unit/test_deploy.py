"""``deploy/`` parses, and every ``esafety`` command in it is a command of the CLI.

Each file is read with the parser its tool uses (YAML, the Dockerfile's JSON
forms, systemd's ini), every command line is extracted and parsed by the real
CLI (``build_cli()``, options and their types included), and the pieces that
must fit together do: each queue has a worker group, each group a KEDA
ScaledObject, a PodDisruptionBudget, probes and a scrape target.
"""

from __future__ import annotations

import configparser
import functools
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from esafety.workers.cli.main import build_cli
from esafety.workers.engine import QUEUES

try:  # typer 0.2x carries its own click
    from typer._click import Command
    from typer._click.exceptions import BadParameter, UsageError
except ImportError:  # pragma: no cover - older typer on click
    from click import BadParameter, Command, UsageError  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
IMAGE_ENTRYPOINT = ["esafety"]


@functools.cache
def _cli() -> Command:
    return typer.main.get_command(build_cli())


def _is_group(command: Command) -> bool:
    return bool(getattr(command, "commands", None))


def _resolve(argv: list[str]) -> tuple[Command, list[str], list[str]]:
    """The command ``argv`` names, its path, and the arguments left for it."""
    assert Path(argv[0]).name == "esafety", argv
    command: Command = _cli()
    path, rest = ["esafety"], argv[1:]
    while _is_group(command) and rest and not rest[0].startswith("-"):
        sub = command.commands.get(rest[0])
        assert sub is not None, f"`{' '.join(path)}` has no command {rest[0]!r}: {argv}"
        command, path, rest = sub, [*path, rest[0]], rest[1:]
    return command, path, rest


def check_command(argv: list[str]) -> None:
    """Parse ``argv`` with the CLI itself: unknown commands, options or bad values fail."""
    command, path, rest = _resolve(argv)
    if _is_group(command):
        assert command.invoke_without_command, f"`{' '.join(path)}` needs a subcommand"
    command.make_context(" ".join(path), list(rest), resilient_parsing=False)


def check_mention(snippet: str) -> None:
    """A command quoted in a comment: its subcommands and options must exist."""
    argv = shlex.split(snippet)
    command, path, rest = _resolve(argv)
    known = {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]}
    for token in rest:
        if token.startswith("--"):
            assert token.split("=")[0] in known, f"`{' '.join(path)}` has no option {token}"


def _yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


# -- every file parses, every command exists -------------------------------------------------
def test_every_deploy_file_is_known_and_parses() -> None:
    parsed = {
        path.relative_to(DEPLOY).as_posix()
        for path in DEPLOY.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    for name in parsed:
        path = DEPLOY / name
        if path.suffix in (".yaml", ".yml"):
            assert _yaml(path), name
        elif path.suffix in (".service", ".target"):
            _unit(path)
        elif path.suffix == ".env" or name.endswith(".env.example"):
            assert _env(path), name
    assert {"Dockerfile", "compose.yaml", "prometheus.yml", "redis.conf"} <= parsed
    assert any(n.startswith("k8s/") for n in parsed)
    assert any(n.startswith("systemd/") for n in parsed)


def test_commands_quoted_in_comments_exist() -> None:
    found = 0
    for path in DEPLOY.rglob("*"):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        for snippet in re.findall(r"`(esafety [^`]*)`", path.read_text()):
            check_mention(snippet)
            found += 1
    assert found >= 3


def test_the_resolver_catches_a_wrong_command() -> None:
    with pytest.raises(AssertionError):
        check_command(["esafety", "wroker", "--queues", "events"])
    with pytest.raises(UsageError):
        check_command(["esafety", "worker", "--queue", "events"])
    with pytest.raises(BadParameter):
        check_command(["esafety", "worker", "--processes", "many"])


# -- Dockerfile ----------------------------------------------------------------------------------
def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_small_non_root_and_runs_a_real_command() -> None:
    steps = _instructions((DEPLOY / "Dockerfile").read_text())
    bases = [rest.split()[0] for word, rest in steps if word == "FROM"]
    assert bases and all(base.endswith("-slim") for base in bases)
    users = [rest for word, rest in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    entry = json.loads(next(rest for word, rest in steps if word == "ENTRYPOINT"))
    cmd = json.loads(next(rest for word, rest in steps if word == "CMD"))
    assert entry == IMAGE_ENTRYPOINT
    check_command(entry + cmd)
    assert ("STOPSIGNAL", "SIGTERM") in steps
    assert any(word == "HEALTHCHECK" and "/healthz" in rest for word, rest in steps)


# -- compose and Prometheus -------------------------------------------------------------------
def _compose() -> dict[str, Any]:
    (compose,) = _yaml(DEPLOY / "compose.yaml")
    return dict(compose)


def _queues_of(argv: list[str]) -> set[str]:
    return set(argv[argv.index("--queues") + 1].split(",")) if "--queues" in argv else set()


def test_compose_runs_every_queue_group_with_real_commands() -> None:
    services = _compose()["services"]
    covered: set[str] = set()
    workers = []
    for name, service in services.items():
        if service.get("image", "").startswith("esafety"):
            argv = IMAGE_ENTRYPOINT + list(service["command"])
            check_command(argv)
            if argv[1] == "worker":
                workers.append(name)
                covered |= _queues_of(argv)
                assert service["stop_grace_period"] == "60s"
                assert service["environment"]["ESAFETY_METRICS_HOST"] == "0.0.0.0"
    assert covered == set(QUEUES)
    assert len(workers) >= 3
    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    scraped = {
        name
        for job in prometheus["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
        for name in sd["names"]
    }
    assert scraped == set(workers)


def test_compose_redis_is_durable_and_uses_acl_users() -> None:
    redis_service = _compose()["services"]["redis"]
    assert "./redis.conf:/usr/local/etc/redis/redis.conf:ro" in redis_service["volumes"]
    assert "/usr/local/etc/redis/redis.conf" in redis_service["command"]
    conf = [
        line.split("#")[0].split() if not line.startswith("user ") else line.split()
        for line in (DEPLOY / "redis.conf").read_text().splitlines()
    ]
    directives = {words[0]: words[1:] for words in conf if words}
    assert directives["appendonly"] == ["yes"]
    users = [words for words in conf if words and words[0] == "user"]
    assert ["user", "default", "off"] in users
    names = {words[1] for words in users}
    assert "worker" in names
    url = _compose()["x-esafety"]["environment"]["ESAFETY_REDIS_URL"]
    assert url.startswith("redis://worker:")


# -- Kubernetes ---------------------------------------------------------------------------------
def _k8s() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += _yaml(path)
    return docs


def test_kubernetes_deployment_per_group_with_probes_keda_and_pdb() -> None:
    docs = _k8s()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    scaled = {d["spec"]["scaleTargetRef"]["name"]: d for d in docs if d["kind"] == "ScaledObject"}
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    covered: set[str] = set()
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        argv = container.get("command", IMAGE_ENTRYPOINT) + container["args"]
        check_command(argv)
        covered |= _queues_of(argv)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["path"] == "/healthz"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert pod["spec"]["terminationGracePeriodSeconds"] >= 45
        labels = pod["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"] == labels
        assert name in scaled, f"no ScaledObject for {name}"
        trigger = scaled[name]["spec"]["triggers"][0]
        assert trigger["type"] == "redis"
        assert trigger["metadata"]["listName"].split(":")[-1] in _queues_of(argv)
        assert any(b["spec"]["selector"]["matchLabels"] == labels for b in budgets)
    assert covered == set(QUEUES)
    kustomization = next(d for d in docs if d.get("kind") == "Kustomization")
    for resource in kustomization["resources"]:
        assert (DEPLOY / "k8s" / resource).is_file()


# -- systemd --------------------------------------------------------------------------------------
def _unit(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def _env(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = " ".join(shlex.split(value))
    return out


def test_systemd_unit_runs_each_group_with_a_real_command() -> None:
    unit = _unit(DEPLOY / "systemd" / "esafety-worker@.service")
    service = unit["Service"]
    assert service["KillSignal"] == "SIGTERM" and int(service["TimeoutStopSec"]) >= 45
    assert service["User"] != "root"
    shared = _env(DEPLOY / "systemd" / "esafety.env.example")
    json.loads(shared["ESAFETY_PREFETCH_BY_QUEUE"])
    covered: set[str] = set()
    for env_file in sorted((DEPLOY / "systemd").glob("worker-*.env")):
        values = {**shared, **_env(env_file)}
        line = re.sub(r"\$\{(\w+)\}", lambda m, v=values: v[m.group(1)], service["ExecStart"])
        argv = shlex.split(line)
        check_command(argv)
        covered |= _queues_of(argv)
    assert covered == set(QUEUES)
    target = _unit(DEPLOY / "systemd" / "esafety-workers.target")
    wanted = set(target["Unit"]["Wants"].split())
    groups = {p.stem.removeprefix("worker-") for p in (DEPLOY / "systemd").glob("worker-*.env")}
    assert wanted == {f"esafety-worker@{g}.service" for g in groups}


# -- Prometheus alerting rules ---------------------------------------------------------------
def test_alert_rules_are_loaded_and_use_metrics_the_engine_exports() -> None:
    from esafety.workers.metrics import EngineMetrics

    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["/etc/prometheus/prometheus-alerts.yml"]
    prometheus_service = _compose()["services"]["prometheus"]
    mount = "./prometheus-alerts.yml:/etc/prometheus/prometheus-alerts.yml:ro"
    assert mount in prometheus_service["volumes"]
    exported = {
        f"{family.name}_total" if family.type == "counter" else family.name
        for family in EngineMetrics().registry.collect()
    }
    rules = [
        rule
        for group in yaml.safe_load((DEPLOY / "prometheus-alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    ]
    named = {rule["alert"] for rule in rules}
    assert {"EsafetyDeadlineMissed", "EsafetyNoticesFailing", "EsafetyWorkersDown"} <= named
    for rule in rules:
        used = set(re.findall(r"\besafety_[a-z_]+", rule["expr"]))
        assert used <= exported, (rule["alert"], used - exported)
        assert rule["labels"]["severity"] in ("page", "ticket")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_every_scraped_group_has_its_own_down_alert() -> None:
    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    groups = {
        n
        for job in prometheus["scrape_configs"]
        for sd in job["dns_sd_configs"]
        for n in sd["names"]
    }
    rules = yaml.safe_load((DEPLOY / "prometheus-alerts.yml").read_text())["groups"][0]["rules"]
    [down] = [r for r in rules if r["alert"] == "EsafetyWorkersDown"]
    assert {g for g in groups if f'group="{g}"' in down["expr"]} == groups


def test_alerted_series_exist_at_zero_before_the_first_event() -> None:
    from esafety.workers.metrics import EngineMetrics

    registry = EngineMetrics().registry
    for name, label in (
        ("esafety_deadlines_missed_total", "allegation"),
        ("esafety_effects_failed_total", "guardian_notice"),
    ):
        labels = {"kind": label}
        assert registry.get_sample_value(name, labels) == 0.0, name
