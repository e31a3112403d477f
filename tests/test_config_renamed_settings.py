"""The ready-round pool's settings were renamed so they no longer read like the database pool's; the old names
keep working, with a warning that names the new one."""

from __future__ import annotations

import warnings

import pytest

from app.config import Settings


def make(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name in ("ARENA_READY_ROUNDS", "ARENA_READY_ROUND_TTL_S", "ARENA_POOL_SIZE", "ARENA_POOL_TTL_S"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None, environment="test", secret_key="x" * 32)  # type: ignore[call-arg, arg-type]


def test_the_new_names_set_the_ready_round_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make(monkeypatch, ARENA_READY_ROUNDS="5", ARENA_READY_ROUND_TTL_S="42")
    assert (settings.ready_rounds, settings.ready_round_ttl_s) == (5, 42.0)


@pytest.mark.parametrize(
    ("old", "new", "field", "value"),
    [
        ("ARENA_POOL_SIZE", "ARENA_READY_ROUNDS", "ready_rounds", 7),
        ("ARENA_POOL_TTL_S", "ARENA_READY_ROUND_TTL_S", "ready_round_ttl_s", 45.0),
    ],
)
def test_an_old_name_still_works_with_a_deprecation_warning(
    monkeypatch: pytest.MonkeyPatch, old: str, new: str, field: str, value: float
) -> None:
    with pytest.warns(FutureWarning, match=f"{old} is deprecated.*{new}"):
        settings = make(monkeypatch, **{old: str(value)})
    assert getattr(settings, field) == value


def test_the_new_name_wins_over_the_old_one(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.warns(FutureWarning):
        settings = make(monkeypatch, ARENA_READY_ROUNDS="3", ARENA_POOL_SIZE="9")
    assert settings.ready_rounds == 3


def test_the_database_pool_is_not_mistaken_for_the_old_name(monkeypatch: pytest.MonkeyPatch) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings = make(monkeypatch, ARENA_DB_POOL_SIZE="11")
    assert settings.db_pool_size == 11 and settings.ready_rounds == 2
