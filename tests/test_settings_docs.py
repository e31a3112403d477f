"""The README's settings table and `.env.example` are made from the settings class; these tests keep them so."""

from __future__ import annotations

import re

from app.config import ENV_EXAMPLE, README, RENAMED_ENV, all_fields, env_example, env_name, readme_with_table


def test_the_readme_settings_table_is_the_one_the_settings_class_makes() -> None:
    readme = README.read_text()
    assert readme_with_table(readme) == readme, "run `python -m app.config` to remake the table"


def test_env_example_lists_every_setting_at_its_default() -> None:
    assert ENV_EXAMPLE.read_text() == env_example(), "run `python -m app.config` to remake .env.example"


def test_every_arena_variable_the_readme_names_is_a_setting() -> None:
    known = {env_name(name) for name in all_fields()} | set(RENAMED_ENV)  # old names still read
    named = set(re.findall(r"\bARENA_[A-Z0-9_]+", README.read_text())) - {"ARENA_TEST_POSTGRES_URL"}
    named = {name for name in named if not name.startswith("ARENA_TEST_")}
    assert named - known == set()
