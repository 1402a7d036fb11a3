"""A compose file checked against the rules of the Compose Specification, as we read them.

No Docker engine (nor ``docker compose config``) runs where the tests do, and
we ship no third-party schema: these are the rules of the specification
(https://github.com/compose-spec/compose-spec, ``spec.md``) that a file like
ours can break, written out here. ``problems`` returns one sentence per broken
rule, so a test failing shows them all.

What is checked: the top-level and service attributes are ones the
specification defines; every service has an ``image`` or a ``build`` whose
context and Dockerfile exist; ``depends_on`` names services that exist, with a
known condition, without cycles, and ``service_healthy`` only on a service
with a health check; health checks have a ``CMD``/``CMD-SHELL``/``NONE`` test
and durations Compose can read; ports are ``[[ip:]host:]container[/proto]``
with ports in range; volumes are named volumes declared at the top level or
bind mounts of paths that exist; secrets used are declared, each from exactly
one source; ``environment`` holds scalars; ``restart`` is a known policy;
every ``$`` is a well-formed interpolation.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

TOP_LEVEL = {"version", "name", "include", "services", "networks", "volumes", "configs", "secrets"}
SERVICE_ATTRIBUTES = {
    "annotations", "attach", "blkio_config", "build", "cap_add", "cap_drop", "cgroup",
    "cgroup_parent", "command", "configs", "container_name", "cpu_count", "cpu_percent",
    "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus",
    "cpuset", "credential_spec", "depends_on", "deploy", "develop", "device_cgroup_rules",
    "devices", "dns", "dns_opt", "dns_search", "domainname", "driver_opts", "entrypoint",
    "env_file", "environment", "expose", "extends", "external_links", "extra_hosts", "gpus",
    "group_add", "healthcheck", "hostname", "image", "init", "ipc", "isolation", "labels",
    "label_file", "links", "logging", "mac_address", "mem_limit", "mem_reservation",
    "mem_swappiness", "memswap_limit", "models", "network_mode", "networks", "oom_kill_disable",
    "oom_score_adj", "pid", "pids_limit", "platform", "ports", "post_start", "pre_stop",
    "privileged", "profiles", "provider", "pull_policy", "read_only", "restart", "runtime",
    "scale", "secrets", "security_opt", "shm_size", "stdin_open", "stop_grace_period",
    "stop_signal", "storage_opt", "sysctls", "tmpfs", "tty", "ulimits", "use_api_socket",
    "user", "userns_mode", "uts", "volumes", "volumes_from", "working_dir",
}  # fmt: skip
BUILD_ATTRIBUTES = {
    "context", "dockerfile", "dockerfile_inline", "args", "ssh", "cache_from", "cache_to",
    "additional_contexts", "entitlements", "extra_hosts", "isolation", "privileged", "labels",
    "no_cache", "pull", "network", "shm_size", "target", "secrets", "tags", "ulimits",
    "platforms",
}  # fmt: skip
HEALTHCHECK_ATTRIBUTES = {
    "test", "interval", "timeout", "retries", "start_period", "start_interval", "disable",
}  # fmt: skip
DEPENDS_ON_ATTRIBUTES = {"condition", "restart", "required"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
SECRET_SOURCES = {"file", "environment", "external", "content"}
SECRET_ATTRIBUTES = SECRET_SOURCES | {"name", "labels", "driver", "driver_opts", "template_driver"}
SERVICE_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# Go's time.ParseDuration, as Compose reads durations: "1m30s", "10s", "500ms".
DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
RESTART = re.compile(r"^(no|always|unless-stopped|on-failure(:\d+)?)$")
PORT = re.compile(
    r"^(?:(?P<ip>\[[0-9a-fA-F:.]+\]|[0-9.]+):)?"
    r"(?:(?P<host>\d+(?:-\d+)?)?:)?"
    r"(?P<container>\d+(?:-\d+)?)"
    r"(?:/(?P<proto>tcp|udp|sctp))?$"
)
# $$ (a literal $), $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error},
# ${VAR?error}, ${VAR:+alternative}, ${VAR+alternative}
INTERPOLATION = re.compile(
    r"\$\$|\$[A-Za-z_][A-Za-z0-9_]*|\$\{[A-Za-z_][A-Za-z0-9_]*(?:(?::?[-?+])[^}]*)?\}"
)
VOLUME_MODES = {"ro", "rw", "z", "Z", "cached", "delegated", "consistent", "nocopy"}


def problems(doc: Any, base: Path, raw_text: str = "") -> list[str]:
    """Every rule the compose document ``doc`` (its file in ``base``) breaks."""
    found: list[str] = []
    if not isinstance(doc, dict):
        return ["the file is not a mapping"]
    for key in doc:
        if key not in TOP_LEVEL and not str(key).startswith("x-"):
            found.append(f"unknown top-level attribute {key!r}")
    if "name" in doc and not PROJECT_NAME.match(str(doc["name"])):
        found.append(f"project name {doc['name']!r}: lower-case letters, digits, - and _")
    services = doc.get("services")
    if not isinstance(services, dict) or not services:
        return [*found, "no services"]
    volumes = doc.get("volumes") or {}
    secrets = doc.get("secrets") or {}
    for name, secret in secrets.items():
        found += _secret(name, secret)
    for name, service in services.items():
        where = f"services.{name}"
        if not SERVICE_NAME.match(str(name)):
            found.append(f"{where}: a service name is letters, digits, '.', '_' and '-'")
        if not isinstance(service, dict):
            found.append(f"{where}: not a mapping")
            continue
        for key in service:
            if key not in SERVICE_ATTRIBUTES and not str(key).startswith("x-"):
                found.append(f"{where}: unknown attribute {key!r}")
        if "image" not in service and "build" not in service:
            found.append(f"{where}: neither image nor build")
        if "build" in service:
            found += _build(where, service["build"], base)
        found += _depends_on(where, service.get("depends_on"), services)
        if "healthcheck" in service:
            found += _healthcheck(where, service["healthcheck"])
        for port in service.get("ports") or []:
            found += _port(where, port)
        for volume in service.get("volumes") or []:
            found += _volume(where, volume, volumes, base)
        for secret in service.get("secrets") or []:
            secret_name = secret if isinstance(secret, str) else secret.get("source")
            if secret_name not in secrets:
                found.append(f"{where}: secret {secret_name!r} is not declared at the top level")
        found += _environment(where, service.get("environment"))
        restart = service.get("restart")
        if restart is not None and not RESTART.match(str(restart)):
            found.append(f"{where}: restart policy {restart!r}")
        grace = service.get("stop_grace_period")
        if grace is not None and not DURATION.match(str(grace)):
            found.append(f"{where}: stop_grace_period {grace!r} is not a duration")
    found += _cycles(services)
    for line_number, line in enumerate(raw_text.splitlines(), start=1):
        rest = INTERPOLATION.sub("", line)
        if "$" in rest:
            found.append(f"line {line_number}: a '$' that is no interpolation (write '$$')")
    return found


def _secret(name: str, secret: Any) -> list[str]:
    if not isinstance(secret, dict):
        return [f"secrets.{name}: not a mapping"]
    out = [f"secrets.{name}: unknown attribute {k!r}" for k in secret if k not in SECRET_ATTRIBUTES]
    sources = SECRET_SOURCES & set(secret)
    if len(sources) != 1:
        out.append(
            f"secrets.{name}: exactly one of {sorted(SECRET_SOURCES)}, got {sorted(sources)}"
        )
    return out


def _build(where: str, build: Any, base: Path) -> list[str]:
    if isinstance(build, str):
        build = {"context": build}
    if not isinstance(build, dict):
        return [f"{where}.build: a path or a mapping"]
    out = [f"{where}.build: unknown attribute {k!r}" for k in build if k not in BUILD_ATTRIBUTES]
    context = (base / str(build.get("context", "."))).resolve()
    if not context.is_dir():
        out.append(f"{where}.build.context: {context} is not a folder")
    elif "dockerfile_inline" not in build:
        dockerfile = context / str(build.get("dockerfile", "Dockerfile"))
        if not dockerfile.is_file():
            out.append(f"{where}.build.dockerfile: no {dockerfile}")
    return out


def _depends_on(where: str, depends_on: Any, services: dict[str, Any]) -> list[str]:
    if depends_on is None:
        return []
    if isinstance(depends_on, list):
        depends_on = {name: {"condition": "service_started"} for name in depends_on}
    if not isinstance(depends_on, dict):
        return [f"{where}.depends_on: a list or a mapping"]
    out = []
    for target, rule in depends_on.items():
        if target not in services:
            out.append(f"{where}.depends_on: no service {target!r}")
            continue
        if not isinstance(rule, dict):
            out.append(f"{where}.depends_on.{target}: a mapping")
            continue
        out += [
            f"{where}.depends_on.{target}: unknown attribute {k!r}"
            for k in rule
            if k not in DEPENDS_ON_ATTRIBUTES
        ]
        condition = rule.get("condition", "service_started")
        if condition not in CONDITIONS:
            out.append(f"{where}.depends_on.{target}: unknown condition {condition!r}")
        check = (services[target] or {}).get("healthcheck") or {}
        if condition == "service_healthy" and (not check or check.get("disable")):
            out.append(
                f"{where}.depends_on.{target}: service_healthy, but {target} has no health check"
            )
    return out


def _healthcheck(where: str, check: Any) -> list[str]:
    if not isinstance(check, dict):
        return [f"{where}.healthcheck: a mapping"]
    out = [
        f"{where}.healthcheck: unknown attribute {k!r}"
        for k in check
        if k not in HEALTHCHECK_ATTRIBUTES
    ]
    test = check.get("test")
    if check.get("disable"):
        return out
    if isinstance(test, list):
        if not test or test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            out.append(f"{where}.healthcheck.test: a list starts with CMD, CMD-SHELL or NONE")
        elif test[0] != "NONE" and len(test) < 2:
            out.append(f"{where}.healthcheck.test: {test[0]} with no command")
    elif not isinstance(test, str) or not test.strip():
        out.append(f"{where}.healthcheck.test: a command is needed")
    for key in ("interval", "timeout", "start_period", "start_interval"):
        if key in check and not DURATION.match(str(check[key])):
            out.append(f"{where}.healthcheck.{key}: {check[key]!r} is not a duration")
    retries = check.get("retries")
    if retries is not None and (not isinstance(retries, int) or retries < 0):
        out.append(f"{where}.healthcheck.retries: a whole number")
    return out


def _port(where: str, port: Any) -> list[str]:
    if isinstance(port, dict):  # the long syntax
        target = port.get("target")
        if not isinstance(target, int) or not 0 < target < 65536:
            return [f"{where}.ports: target {target!r} is not a port"]
        return []
    found = PORT.match(str(port))
    if found is None:
        return [f"{where}.ports: {port!r} is not [[ip:]host:]container[/protocol]"]
    out = []
    ip = found["ip"]
    if ip:
        try:
            ipaddress.ip_address(ip.strip("[]"))
        except ValueError:
            out.append(f"{where}.ports: {ip!r} is not an IP address")
    for part in (found["host"], found["container"]):
        if part and not all(0 < int(p) < 65536 for p in part.split("-")):
            out.append(f"{where}.ports: {port!r} has a port out of range")
    return out


def _volume(where: str, volume: Any, declared: dict[str, Any], base: Path) -> list[str]:
    if isinstance(volume, dict):  # the long syntax
        source = volume.get("source")
        if volume.get("type") == "volume" and source not in declared:
            return [f"{where}.volumes: named volume {source!r} is not declared"]
        return []
    parts = str(volume).split(":")
    if len(parts) == 1:
        return []  # an anonymous volume at that path
    if len(parts) > 3:
        return [f"{where}.volumes: {volume!r} is not source:target[:mode]"]
    source, target = parts[0], parts[1]
    out = []
    if not target.startswith("/"):
        out.append(f"{where}.volumes: target {target!r} is not an absolute path")
    if len(parts) == 3 and not set(parts[2].split(",")) <= VOLUME_MODES:
        out.append(f"{where}.volumes: mode {parts[2]!r}")
    if source.startswith((".", "/", "~")):
        if source.startswith(".") and not (base / source).exists():
            out.append(f"{where}.volumes: bind mount of {source!r}, which does not exist")
    elif source not in declared:
        out.append(f"{where}.volumes: named volume {source!r} is not declared at the top level")
    return out


def _environment(where: str, environment: Any) -> list[str]:
    if environment is None:
        return []
    if isinstance(environment, list):
        return [
            f"{where}.environment: {item!r} is not NAME=value"
            for item in environment
            if not re.match(r"^[^=\s]+(=.*)?$", str(item))
        ]
    if not isinstance(environment, dict):
        return [f"{where}.environment: a list or a mapping"]
    return [
        f"{where}.environment.{key}: {value!r} is not a string, number or boolean"
        for key, value in environment.items()
        if value is not None and not isinstance(value, str | int | float | bool)
    ]


def _cycles(services: dict[str, Any]) -> list[str]:
    def targets(name: str) -> list[str]:
        depends_on = (services.get(name) or {}).get("depends_on") or {}
        return [t for t in depends_on if t in services]

    out = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in targets(name):
            if state.get(target) == "open":
                out.append("depends_on cycle: " + " -> ".join([*path, target]))
            elif target not in state:
                visit(target, [*path, target])
        state[name] = "done"

    for name in services:
        if name not in state:
            visit(name, [name])
    return out
