"""What every command offers: --version, closed sets of values shown in --help and checked (a wrong one is a usage
error, exit 2, naming the choices), and --threads defaulting to the machine (0: all cores but one)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.cli.common import machine_threads
from app.config import PROJECT_ROOT
from tests.cli.output import unboxed

runner = CliRunner()


def test_version_names_the_package_version_and_the_checkout_commit() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert re.match(r"arena \d+\.\d+\.\d+", result.output)
    if (PROJECT_ROOT / ".git").exists():
        assert re.search(r"\(commit [0-9a-f]{12}(, uncommitted changes)?\)$", result.output.strip())


@pytest.mark.parametrize(
    ("command", "choices"),
    [
        (["train"], "cpu|cuda"),
        (["eligible"], "cpu|cuda"),
        (["transfer-matrix"], "cpu|cuda"),
        (["train-advgan"], "cpu|cuda"),
        (["modelsvc"], "inprocess|ray"),
        (["export"], "csv|json|jsonl|zip"),
        ([], "debug|info|warning|error|critical"),
        ([], "text|json"),
    ],
)
def test_help_lists_the_choices(command: list[str], choices: str) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert choices in result.output


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["train", "--device", "tpu"], "'tpu' is not one of 'cpu', 'cuda'"),
        (["eligible", "--device", "gpu"], "'gpu' is not one of 'cpu', 'cuda'"),
        (["modelsvc", "--backend", "k8s"], "'k8s' is not one of 'inprocess', 'ray'"),
        (["export", "-f", "xlsx"], "'xlsx' is not one of 'csv', 'json', 'jsonl', 'zip'"),
        (["--log-format", "xml", "db", "current"], "'xml' is not one of 'text', 'json'"),
    ],
)
def test_a_value_outside_the_choices_is_a_usage_error(arguments: list[str], named: str) -> None:
    result = runner.invoke(app, arguments)
    assert result.exit_code == 2, result.output
    assert named in unboxed(result.output)


def test_threads_zero_means_all_cores_but_one() -> None:
    assert machine_threads(0) == max(1, (os.cpu_count() or 2) - 1)
    assert machine_threads(3) == 3
    result = runner.invoke(app, ["train", "--threads", "-1"])
    assert result.exit_code == 2


def test_train_runs_on_all_cores_but_one_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: dict[str, Any] = {}

    def recording(pack: str, options: Any) -> dict[str, Any]:
        asked.update(vars(options))
        raise ValueError("stop here: only the options were wanted")

    monkeypatch.setattr("app.ml.training.command.train_pack", recording)
    result = runner.invoke(app, ["train"])
    assert result.exit_code == 1 and "stop here" in result.output
    assert asked["threads"] == max(1, (os.cpu_count() or 2) - 1) and asked["device"] == "cpu"


def test_help_loads_neither_torch_nor_the_database_layer() -> None:
    probe = (
        "import sys; from typer.testing import CliRunner; from app.cli import app; "
        "CliRunner().invoke(app, ['--help']); CliRunner().invoke(app, ['train', '--help']); "
        "print(sorted(m for m in ('torch', 'sqlalchemy', 'alembic') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"
