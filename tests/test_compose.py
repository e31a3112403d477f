"""docker-compose.yml and the Dockerfile, checked without a Docker engine: the YAML parses, the services start in
the right order (healthchecks and depends_on conditions), every `arena ...` command they run is a real command of
this project with real options, and every file the image copies exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli import app as arena_cli

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())  # safe_load resolves the file's anchors and merge keys
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            pairs.append((instruction.upper(), rest.strip()))
    return pairs


def placeholder(value: str) -> str:
    """A compose value with each ${VAR...} interpolation replaced by a plain word, so that it can be parsed."""
    return re.sub(r"\$\{[^}]*\}", "value", value)


def exec_form(value: str | list[str]) -> list[str]:
    return list(value) if isinstance(value, list) else shlex.split(value)


def arena_commands(services: dict[str, dict[str, Any]]) -> list[tuple[str, list[str]]]:
    found = []
    for name, service in services.items():
        command = service.get("command")
        if command is not None and exec_form(command)[0] == "arena":
            found.append((name, exec_form(command)[1:]))
    for instruction, rest in dockerfile_instructions():
        if instruction == "CMD":
            argv = yaml.safe_load(rest)  # the JSON exec form
            assert argv[0] == "arena"
            found.append(("Dockerfile CMD", argv[1:]))
    return found


def test_the_four_services_and_the_cpu_fallback(services: dict[str, dict[str, Any]]) -> None:
    assert {"postgres", "migrate", "web", "modelsvc", "modelsvc-cpu"} <= set(services)
    # Exactly one model service per profile, both reachable under the same name.
    assert services["modelsvc"]["profiles"] == ["gpu"]
    assert services["modelsvc-cpu"]["profiles"] == ["cpu"]
    for name in ("modelsvc", "modelsvc-cpu"):
        assert "modelsvc" in services[name]["networks"]["default"]["aliases"]
    for name in ("postgres", "migrate", "web"):
        assert "profiles" not in services[name], f"{name} must run in every profile"


def test_postgres_is_healthchecked_and_keeps_its_data_in_a_named_volume(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert "pg_isready" in " ".join(exec_form(postgres["healthcheck"]["test"]))
    volume, _, target = postgres["volumes"][0].partition(":")
    assert target == "/var/lib/postgresql/data"
    assert volume in compose["volumes"], "a named volume, declared at the top level"


def test_start_order_waits_on_health_and_on_the_migration(services: dict[str, dict[str, Any]]) -> None:
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    web = services["web"]["depends_on"]
    assert web["migrate"]["condition"] == "service_completed_successfully"
    assert web["postgres"]["condition"] == "service_healthy"
    for name in ("modelsvc", "modelsvc-cpu"):
        assert web[name] == {"condition": "service_healthy", "required": False}
        assert "healthcheck" in services[name]
    assert "healthcheck" in services["web"]


def test_gpu_reservation_and_cpu_fallback(services: dict[str, dict[str, Any]]) -> None:
    devices = services["modelsvc"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert services["modelsvc"]["environment"]["ARENA_DEVICE"] == "cuda"
    assert "deploy" not in services["modelsvc-cpu"]
    assert services["modelsvc-cpu"]["environment"]["ARENA_DEVICE"] == "cpu"
    assert exec_form(services["modelsvc"]["command"]) == exec_form(services["modelsvc-cpu"]["command"])


def test_the_gpu_model_service_builds_cuda_torch_and_the_others_the_cpu_image(
    services: dict[str, dict[str, Any]],
) -> None:
    """The Dockerfile's default TORCH_INDEX_URL is PyTorch's CPU index; only the GPU service overrides it, with an
    image name of its own so the two builds never overwrite each other."""
    default_index = re.search(r"ARG TORCH_INDEX_URL=(\S+)", (ROOT / "Dockerfile").read_text())
    assert default_index and default_index.group(1).endswith("/whl/cpu")
    gpu = services["modelsvc"]
    assert gpu["build"]["args"]["TORCH_INDEX_URL"] == "https://pypi.org/simple"
    assert gpu["image"] != services["modelsvc-cpu"]["image"]
    for name in ("web", "migrate", "modelsvc-cpu"):
        assert "args" not in services[name]["build"], name
        assert services[name]["image"] == services["migrate"]["image"]


def test_web_reaches_the_model_service_where_it_listens(services: dict[str, dict[str, Any]]) -> None:
    url = urlsplit(services["web"]["environment"]["ARENA_MODEL_SERVICE_URL"])
    argv = exec_form(services["modelsvc"]["command"])
    assert url.hostname == "modelsvc"
    assert str(url.port) == argv[argv.index("--port") + 1]
    assert argv[argv.index("--host") + 1] == "0.0.0.0", "reachable from the web container"
    assert "ports" not in services["modelsvc"] and "ports" not in services["modelsvc-cpu"], "internal only"


def test_every_service_on_the_database_gets_the_same_url_and_a_required_secret(
    services: dict[str, dict[str, Any]],
) -> None:
    urls = {services[name]["environment"]["ARENA_DATABASE_URL"] for name in ("migrate", "web")}
    assert len(urls) == 1 and urlsplit(placeholder(urls.pop())).hostname == "postgres"
    for name in ("migrate", "web"):
        environment = services[name]["environment"]
        assert environment["ARENA_ENVIRONMENT"] == "production"
        assert environment["ARENA_SECRET_KEY"].startswith("${ARENA_SECRET_KEY:?"), "compose refuses to start without"


@pytest.mark.parametrize("healthcheck_of", ["web", "modelsvc", "modelsvc-cpu"])
def test_python_healthchecks_compile(services: dict[str, dict[str, Any]], healthcheck_of: str) -> None:
    argv = exec_form(services[healthcheck_of]["healthcheck"]["test"])
    assert argv[:3] == ["CMD", "python", "-c"]
    compile(argv[3], f"<{healthcheck_of} healthcheck>", "exec")


def test_web_healthcheck_asks_a_real_route(services: dict[str, dict[str, Any]]) -> None:
    from app.config import Settings
    from app.main import create_app

    code = exec_form(services["web"]["healthcheck"]["test"])[3]
    path = urlsplit(re.search(r"'(http://[^']+)'", code).group(1)).path  # type: ignore[union-attr]
    # /livez needs nothing the lifespan starts, so it answers without it.
    assert TestClient(create_app(Settings(environment="test"))).get(path).status_code == 200


def test_the_web_container_stays_healthy_while_the_model_service_restarts(services: dict[str, dict[str, Any]]) -> None:
    """/livez answers as long as the process does; /readyz and /healthz turn 503 when the model service is away,
    which would mark the web container unhealthy (and restart it under an orchestrator) for no fault of its own."""
    code = exec_form(services["web"]["healthcheck"]["test"])[3]
    assert urlsplit(re.search(r"'(http://[^']+)'", code).group(1)).path == "/livez"  # type: ignore[union-attr]


def test_model_service_healthcheck_asks_a_real_route_of_the_protocol(services: dict[str, dict[str, Any]]) -> None:
    from app.modelsvc.server import create_server_app

    code = exec_form(services["modelsvc"]["healthcheck"]["test"])[3]
    url = urlsplit(re.search(r"'(http://[^']+)'", code).group(1))  # type: ignore[union-attr]
    argv = exec_form(services["modelsvc"]["command"])
    assert str(url.port) == argv[argv.index("--port") + 1]
    # Building the app defines its routes; nothing starts until its lifespan runs.
    paths = {getattr(route, "path", None) for route in create_server_app(object()).routes}  # type: ignore[arg-type]
    assert url.path in paths


def test_every_arena_command_is_real(services: dict[str, dict[str, Any]]) -> None:
    commands = arena_commands(services)
    assert {name for name, _ in commands} >= {"migrate", "web", "modelsvc", "modelsvc-cpu", "Dockerfile CMD"}
    runner = CliRunner()
    for name, argv in commands:
        # --help is eager, but unknown commands and options still fail to parse first (exit code 2).
        result = runner.invoke(arena_cli, [*argv, "--help"])
        assert result.exit_code == 0, f"{name}: `arena {' '.join(argv)}` is not a valid command:\n{result.output}"


def test_every_file_the_image_copies_exists_and_none_is_ignored() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    copies = [rest.split() for instruction, rest in dockerfile_instructions() if instruction == "COPY"]
    assert copies
    for *sources, _destination in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the repository"
            assert source not in ignored, f"{source} is in .dockerignore, so the build would not see it"


def test_the_image_pins_the_projects_torch_and_debian_data_pack() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim-bookworm")
    runs = " ".join(rest for instruction, rest in instructions if instruction == "RUN")
    pyproject = (ROOT / "pyproject.toml").read_text()
    for pin in re.findall(r'"(torch(?:vision)?==[^"]+)"', pyproject):
        assert pin in runs, f"the image must install {pin} like pyproject.toml"
    assert "dataset-fashion-mnist" in runs
    assert "pip install -e" in runs, "editable: the app finds alembic/, templates/ and models/ beside app/"
