"""The two set-up commands: `make play` installs only what playing needs; `make test` adds the rest, type-checks,
and says how to get PostgreSQL when none answers."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAKEFILE = (ROOT / "Makefile").read_text()


def variable(name: str) -> str:
    match = re.search(rf"^{name}\s*:=\s*(.*)$", MAKEFILE, re.MULTILINE)
    assert match, name
    return match.group(1).strip()


def prerequisites(target: str) -> list[str]:
    match = re.search(rf"^{target}:([^#\n]*)", MAKEFILE, re.MULTILINE)
    assert match, target
    return match.group(1).split()


def test_play_installs_the_game_and_its_extras_not_the_test_or_scale_out_ones() -> None:
    assert set(variable("PLAY_EXTRAS").split(",")) == {"imagenet", "text"}
    assert "install" in prerequisites("play")
    assert "$(PLAY_STAMP)" in prerequisites("install") and "$(TEST_STAMP)" not in prerequisites("install")


def test_test_adds_the_test_reference_attack_and_scale_out_extras_and_runs_mypy() -> None:
    assert {"dev", "ray", "ml-extra"} <= set(variable("TEST_EXTRAS").split(","))
    assert '["attacks"]' in MAKEFILE  # torchattacks, installed apart with --no-deps (pyproject.toml says why)
    assert {"test-install", "postgres", "typecheck"} <= set(prerequisites("test"))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_postgres(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`make postgres` on a PATH without PostgreSQL's tools, against a port nothing listens on."""
    tools = tmp_path / "bin"
    tools.mkdir(parents=True)
    for tool in ("python3", "sh", "ls", "head", "id", "sha1sum", "cut", "make"):
        found = shutil.which(tool)
        assert found, tool
        (tools / tool).symlink_to(found)
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/test"
    clean = {key: value for key, value in os.environ.items() if key not in ("CI", "ARENA_TEST_SKIP_POSTGRES")}
    return subprocess.run(
        ["make", "--no-print-directory", "postgres"],
        cwd=ROOT,
        env={**clean, "PATH": str(tools), "ARENA_TEST_POSTGRES_URL": url, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_a_missing_postgres_names_the_commands_that_install_and_start_it(tmp_path: Path) -> None:
    result = make_postgres(tmp_path)
    assert result.returncode != 0
    assert "apt-get install -y postgresql" in result.stderr and "pg_ctlcluster" in result.stderr
    assert "ARENA_TEST_SKIP_POSTGRES=1" in result.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_skipping_postgres_is_allowed_outside_ci_only(tmp_path: Path) -> None:
    assert make_postgres(tmp_path / "a", ARENA_TEST_SKIP_POSTGRES="1").returncode == 0
    assert make_postgres(tmp_path / "b", ARENA_TEST_SKIP_POSTGRES="1", CI="true").returncode != 0
