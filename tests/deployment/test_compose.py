"""deploy/compose.yaml: a valid Compose file whose parts point at each other correctly."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from api.settings import Settings
from deployment.compose_rules import problems
from deployment.layout import (
    COMPOSE,
    DASHBOARD,
    DASHBOARD_PROVIDERS,
    DATASOURCES,
    DEPLOY,
    ENV_EXAMPLE,
    PROMETHEUS,
    ROOT,
    compose,
    load_yaml,
)

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")
SETTINGS_VARIABLES = {f"ACD_{name.upper()}" for name in Settings.model_fields}


def env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def strings(node: Any) -> list[str]:
    """Every string value of a parsed YAML document (where Compose interpolates)."""
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in strings(value)]
    return [node] if isinstance(node, str) else []


def variables() -> list[tuple[str, str, str]]:
    """(name, operator, argument) of every ``${...}`` in the compose file's values."""
    return [found for text in strings(compose()) for found in VARIABLE.findall(text)]


def interpolated(env: dict[str, str]) -> dict[str, Any]:
    """The compose file as Compose would read it with ``env`` (``${VAR:?}`` must be set)."""

    def value(match: re.Match[str]) -> str:
        name, operator, argument = match[1], match[2], match[3]
        if name in env and (env[name] or not (operator or "").startswith(":")):
            return argument if operator in (":+", "+") else env[name]
        if operator in (":?", "?"):
            raise KeyError(f"{name}: {argument}")
        return argument if operator in (":-", "-") else ""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: walk(item) for key, item in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return VARIABLE.sub(value, node) if isinstance(node, str) else node

    data = walk(compose())
    assert isinstance(data, dict)
    return data


def service(name: str) -> dict[str, Any]:
    found = compose()["services"][name]
    assert isinstance(found, dict)
    return found


def mount(service_name: str, source: str) -> str:
    """Where ``source`` (a named volume or a path relative to deploy/) is mounted."""
    for volume in service(service_name)["volumes"]:
        parts = volume.split(":")
        if parts[0] == source:
            return str(parts[1])
    raise AssertionError(f"{service_name} does not mount {source}")


# -- the specification's rules --------------------------------------------------------------


def test_the_compose_file_follows_the_compose_specification() -> None:
    assert problems(compose(), DEPLOY, COMPOSE.read_text()) == []


BROKEN = [
    (lambda d: d.update(service_names={}), "unknown top-level attribute 'service_names'"),
    (lambda d: d["services"]["acd"].update(imagee="x"), "services.acd: unknown attribute"),
    (lambda d: d["services"]["grafana"].pop("image"), "services.grafana: neither image nor build"),
    (lambda d: d["services"]["acd"]["build"].update(context="../nowhere"), "is not a folder"),
    (lambda d: d["services"]["acd"]["build"].update(dockerfile="Nofile"), "no "),
    (
        lambda d: d["services"]["acd"]["depends_on"].update(redis={"condition": "service_started"}),
        "no service 'redis'",
    ),
    (
        lambda d: d["services"]["acd"]["depends_on"]["postgres"].update(condition="healthy"),
        "unknown condition 'healthy'",
    ),
    (
        lambda d: d["services"]["postgres"].pop("healthcheck"),
        "service_healthy, but postgres has no health check",
    ),
    (
        lambda d: d["services"]["postgres"].update(depends_on={"grafana": {}}),
        "depends_on cycle",
    ),
    (
        lambda d: d["services"]["postgres"]["healthcheck"].update(test=["pg_isready"]),
        "starts with CMD, CMD-SHELL or NONE",
    ),
    (
        lambda d: d["services"]["postgres"]["healthcheck"].update(interval="5 seconds"),
        "is not a duration",
    ),
    (lambda d: d["services"]["acd"].update(ports=["127.0.0.1:80800:8080"]), "out of range"),
    (lambda d: d["services"]["acd"].update(ports=["localhost:8080:8080"]), "is not [[ip:]host"),
    (lambda d: d["services"]["acd"].update(volumes=["acd-state:/var/lib/acd"]), "not declared"),
    (
        lambda d: d["services"]["prometheus"]["volumes"].append("./nothing.yml:/x"),
        "does not exist",
    ),
    (lambda d: d["services"]["prometheus"].update(secrets=["token"]), "secret 'token'"),
    (lambda d: d["secrets"]["metrics_token"].update(file="./t"), "exactly one of"),
    (lambda d: d["services"]["acd"]["environment"].update(ACD_X={"a": 1}), "is not a string"),
    (lambda d: d["services"]["acd"].update(restart="sometimes"), "restart policy"),
    (lambda d: d["services"]["acd"].update(stop_grace_period="40"), "is not a duration"),
]


@pytest.mark.parametrize(("breakage", "reported"), BROKEN)
def test_the_specification_check_reports_a_broken_file(breakage: Any, reported: str) -> None:
    doc = copy.deepcopy(compose())
    breakage(doc)
    found = problems(doc, DEPLOY)
    assert any(reported in p for p in found), found


def test_the_specification_check_reports_a_stray_dollar() -> None:
    found = problems(compose(), DEPLOY, "x: price in $ only\ny: ${OK:-1} and $$ and $VAR")
    assert found == ["line 1: a '$' that is no interpolation (write '$$')"]


# -- the stack ------------------------------------------------------------------------------


def test_the_stack_is_the_server_postgresql_prometheus_and_grafana() -> None:
    doc = compose()
    assert set(doc["services"]) == {"acd", "postgres", "prometheus", "grafana"}
    build = service("acd")["build"]
    assert (DEPLOY / build["context"]).resolve() == ROOT
    assert build["dockerfile"] == "Dockerfile"
    for name in ("postgres", "prometheus", "grafana"):
        image = service(name)["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin a version"


def test_each_service_starts_once_what_it_needs_is_healthy() -> None:
    wanted = {"acd": "postgres", "prometheus": "acd", "grafana": "prometheus"}
    for name, needs in wanted.items():
        assert service(name)["depends_on"] == {needs: {"condition": "service_healthy"}}
    assert "depends_on" not in service("postgres")


def test_postgresql_is_healthy_when_it_answers_and_keeps_its_data_in_a_volume() -> None:
    test = service("postgres")["healthcheck"]["test"]
    assert test[:2] == ["CMD", "pg_isready"]
    env = service("postgres")["environment"]
    assert f"--username={env['POSTGRES_USER']}" in test
    assert f"--dbname={env['POSTGRES_DB']}" in test
    assert mount("postgres", "postgres-data") == "/var/lib/postgresql/data"


def test_the_server_is_given_only_real_settings_and_they_validate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment = interpolated(env_example())["services"]["acd"]["environment"]
    unknown = set(environment) - SETTINGS_VARIABLES
    assert not unknown, f"not settings of api/settings.py: {unknown}"
    for name in list(SETTINGS_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
    settings = Settings()
    assert settings.host == "0.0.0.0"
    assert settings.jwt_secret == env_example()["ACD_JWT_SECRET"]
    assert settings.metrics_token == env_example()["ACD_METRICS_TOKEN"]


def test_the_server_uses_the_postgresql_service() -> None:
    doc = interpolated(env_example())
    url = make_url(doc["services"]["acd"]["environment"]["ACD_DATABASE_URL"])
    postgres = doc["services"]["postgres"]["environment"]
    assert url.drivername == "postgresql+asyncpg"
    assert url.host == "postgres" and url.port == 5432
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"]
    assert url.database == postgres["POSTGRES_DB"]


def test_the_servers_health_check_asks_livez_on_its_port() -> None:
    acd = service("acd")
    port = acd["environment"]["ACD_PORT"]
    command = " ".join(acd["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/livez" in command
    assert acd["ports"] == [f"127.0.0.1:{port}:{port}"]


def test_the_servers_state_volume_holds_its_spool() -> None:
    target = mount("acd", "acd-data")
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"ACD_SPOOL_PATH={target}/acd.spool" in dockerfile


def test_the_server_has_longer_to_stop_than_its_drain() -> None:
    acd = service("acd")
    grace = acd["stop_grace_period"]
    assert grace.endswith("s")
    assert float(grace[:-1]) > float(acd["environment"]["ACD_DRAIN_SECONDS"])


def test_ports_are_published_on_the_loopback_address_only() -> None:
    for name, body in compose()["services"].items():
        for port in body.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: {port}"


# -- secrets --------------------------------------------------------------------------------


def test_every_variable_is_required_and_has_no_default() -> None:
    used = variables()
    assert used
    for name, operator, message in used:
        assert operator == ":?", f"${{{name}}} must be ${{{name}:?message}}"
        assert message.strip(), f"${{{name}:?}} needs a message"


def test_the_example_environment_lists_every_variable_with_a_placeholder() -> None:
    used = {name for name, _, _ in variables()}
    used |= {s["environment"] for s in compose()["secrets"].values() if "environment" in s}
    example = env_example()
    assert set(example) == used
    for name, value in example.items():
        assert value.startswith("replace-with-"), f"{name}: a placeholder, not a value"


def test_without_the_secrets_the_stack_does_not_start() -> None:
    with pytest.raises(KeyError, match="ACD_JWT_SECRET"):
        interpolated({k: v for k, v in env_example().items() if k != "ACD_JWT_SECRET"})


def test_the_secrets_are_kept_out_of_git_and_the_image() -> None:
    assert "deploy/.env" in (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in (ROOT / ".dockerignore").read_text().splitlines()


# -- Prometheus and Grafana -----------------------------------------------------------------


def test_prometheus_scrapes_the_servers_metrics_with_its_token() -> None:
    config = load_yaml(PROMETHEUS)
    jobs = config["scrape_configs"]
    assert [job["job_name"] for job in jobs] == ["acd"]
    job = jobs[0]
    port = service("acd")["environment"]["ACD_PORT"]
    assert job["static_configs"] == [{"targets": [f"acd:{port}"]}]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job.get("scheme", "http") == "http"
    secret = service("prometheus")["secrets"][0]
    assert job["authorization"] == {
        "type": "Bearer",
        "credentials_file": f"/run/secrets/{secret}",
    }
    assert compose()["secrets"][secret] == {"environment": "ACD_METRICS_TOKEN"}
    assert "ACD_METRICS_TOKEN" in service("acd")["environment"]


def test_prometheus_reads_the_config_it_is_given() -> None:
    prometheus = service("prometheus")
    target = mount("prometheus", "./prometheus/prometheus.yml")
    assert f"--config.file={target}" in prometheus["command"]
    storage = next(c for c in prometheus["command"] if c.startswith("--storage.tsdb.path="))
    assert mount("prometheus", "prometheus-data") == storage.split("=", 1)[1]


def test_grafanas_data_source_is_the_prometheus_service() -> None:
    (source,) = load_yaml(DATASOURCES)["datasources"]
    ports = service("prometheus")["ports"]
    assert ports == ["127.0.0.1:9090:9090"]
    assert source["url"] == "http://prometheus:9090"
    assert source["access"] == "proxy"
    dashboard_sources = {
        p["datasource"]["uid"] for p in __import__("json").loads(DASHBOARD.read_text())["panels"]
    }
    assert dashboard_sources == {source["uid"]}


def test_grafana_is_provisioned_with_the_dashboard_from_the_mounted_folder() -> None:
    assert mount("grafana", "./grafana/provisioning") == "/etc/grafana/provisioning"
    (provider,) = load_yaml(DASHBOARD_PROVIDERS)["providers"]
    assert provider["type"] == "file"
    folder = mount("grafana", "./grafana/dashboards")
    assert provider["options"]["path"] == folder
    home = service("grafana")["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{folder}/{DASHBOARD.name}"
    assert (DEPLOY / "grafana" / "dashboards" / DASHBOARD.name).is_file()
    assert Path(mount("grafana", "grafana-data")) == Path("/var/lib/grafana")
