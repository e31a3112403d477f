"""Settings for Adversarial Arena, read from ``ARENA_*`` environment variables (and an optional ``.env``).

Every setting has a documented default so that ``make play`` works with no configuration at all.
Nothing here connects to anything: the settings are plain values, reached through :func:`get_settings`.
"""

from __future__ import annotations

import logging
import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from limits import parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET = "change-me-arena-local-only"
# Settings renamed so that they no longer read like others (ARENA_POOL_SIZE beside ARENA_DB_POOL_SIZE): the old
# environment variable, still read with a warning, and the field it now sets.
RENAMED_ENV = {"ARENA_POOL_SIZE": "ready_rounds", "ARENA_POOL_TTL_S": "ready_round_ttl_s"}

logger = logging.getLogger(__name__)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ARENA_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
    )

    environment: Literal["local", "test", "production"] = Field(
        "local", description="local, test or production: production refuses the built-in secret key."
    )
    database_url: str = Field(
        f"sqlite:///{PROJECT_ROOT / 'var' / 'arena.db'}",
        description="SQLAlchemy URL. SQLite by default; PostgreSQL as postgresql+psycopg://user@host/db.",
    )
    data_dir: Path = Field(
        Path("/usr/share/datasets/fashion-mnist"),
        description="Folder with the Fashion-MNIST idx.gz files (Debian package dataset-fashion-mnist).",
    )
    models_dir: Path = Field(
        PROJECT_ROOT / "models", description="Folder with the opponents' safetensors checkpoints and model cards."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where torch runs: auto (CUDA if present), cpu or cuda."
    )
    host: str = Field("127.0.0.1", description="Address `arena serve` binds to.")
    shutdown_timeout_s: int = Field(
        5,
        ge=1,
        le=600,
        description="On SIGTERM or Ctrl-C, how long `arena serve` lets open requests finish (event streams end at "
        "once) before it cancels them and shuts down; within docker stop's 10 s grace period.",
    )
    port: int = Field(8000, ge=1, le=65535, description="Port `arena serve` listens on.")
    public_url: str = Field(
        "",
        description="Where phones reach this server (https://arena.example.org behind a proxy or tunnel): the join "
        "link and QR code use it. Empty: the address the host's browser used.",
    )
    secret_key: SecretStr = Field(
        SecretStr(DEFAULT_SECRET),
        description="Signs session cookies and CSRF tokens; required (the built-in value is refused) when "
        "ARENA_ENVIRONMENT=production. Set a long random value.",
    )
    cookie_secure: bool = Field(False, description="Send the session cookie only over HTTPS.")
    admin_token: SecretStr = Field(
        SecretStr(""),
        description="Bearer token that shows /healthz's details (model service, pool, device, database) to a "
        "request from elsewhere than this machine. Empty: only requests on loopback see them.",
    )

    opponent: str = Field("fashion-cnn", description="The opponent (classifier) rounds are played against.")
    opponents: str = Field(
        "auto",
        description="Opponents players may choose, comma-separated; auto: every opponent whose checkpoint is in "
        "the models folder. The default opponent is always loaded.",
    )
    attack: str = Field("pgd", description="The attack that perturbs each round's image.")
    condition_mix: str = Field(
        "adversarial",
        description="Science mode outside events: what rounds show, drawn at random with these weights, e.g. "
        "adversarial=0.6,clean=0.1,noise=0.1,flipped=0.1,transfer=0.1 (app/game/conditions.py).",
    )
    attack_steps: int = Field(20, ge=1, le=1000, description="Iterations of the round attack (PGD steps).")
    # Off by default: at the same fool rate it left the machine's wrong answers far less confident (0.52-0.58
    # against 0.81-0.91 with every step), gained 1.08x over HTTP in plain play, and an image's steps then depend on
    # the batch it ran in, so a round no longer regenerates bit for bit from its recipe (benchmarks/RESULTS.md).
    attack_early_stop: bool = Field(
        False,
        description="Round attacks that allow it (PGD) stop per image at the first step whose shown image (rounded "
        "to grey levels) fools the opponent; the round stores the steps it took. false: every step, always.",
    )

    # 200 players asking at once on 2 saturated cores exhausted 10 + 20 connections with a 10 s wait (one 503 in
    # 4,000 rounds, benchmarks/RESULTS.md); 20 + 30 with 30 s stays well under PostgreSQL's default 100.
    db_pool_size: int = Field(20, ge=1, le=500, description="PostgreSQL connections kept open per web process.")
    db_pool_overflow: int = Field(30, ge=0, le=500, description="Extra PostgreSQL connections allowed at peaks.")
    db_pool_timeout_s: float = Field(
        30.0,
        gt=0,
        le=300,
        description="Longest a request waits for a database connection before answering 503 with Retry-After "
        "(nothing was written).",
    )
    rate_limit_per_address: str = Field(
        "1200/minute",
        description="Most requests of one costly kind (new rounds, cloaks, classifications, explanations) from one "
        "client address. High on purpose: a workshop room behind one NAT address is one address, so the "
        "per-player limit below is what holds each of its players back (1200/minute: a room of 100 at a round "
        "every five seconds). `limits` notation (`1200/minute`, `20/second;1200/minute`); over it: 429 with "
        "Retry-After.",
    )
    rate_limit_per_player: str = Field(
        "30/minute",
        description="Most requests of one costly kind from one player (their token or session cookie): about one "
        "round every two seconds, more than a person plays.",
    )
    rate_limit_new_players: str = Field(
        "200/minute",
        description="Most new players and events created from one client address (nobody has a player yet): room "
        "for a whole workshop joining through one NAT address within a minute.",
    )
    rate_limit_strokes_per_address: str = Field(
        "50/second;6000/minute",
        description="Most paint strokes (each one asks the opponent about the painted image) from one client "
        "address: a room of 50 painters behind one NAT address, each stroking about twice a second.",
    )
    rate_limit_strokes_per_player: str = Field(
        "5/second;150/minute",
        description="Most paint strokes from one player: a painter strokes at most a few times a second, so a "
        "burst of 5 in a second and about 2 a second over a minute; the other limits hold every other kind.",
    )
    export_downloads: int = Field(
        8,
        ge=1,
        le=100,
        description="Answer exports that may stream at once; one more answers 503 with Retry-After. Each reads "
        "its pages in short sessions, so a slow downloader holds a database connection only while a page is read.",
    )
    live_database_url: str = Field(
        "",
        description="PostgreSQL URL for the live updates' LISTEN/NOTIFY connections (two per web process), when "
        "ARENA_DATABASE_URL goes through a transaction-mode pooler such as PgBouncer, which cannot LISTEN. It must "
        "reach the same database. Empty: ARENA_DATABASE_URL.",
    )
    service_max_batch: int = Field(32, ge=1, le=1024, description="Most images the model service attacks at once.")
    service_max_wait_ms: float = Field(
        5.0, ge=0.0, le=1000.0, description="How long the service waits to fill a batch after the first request."
    )
    service_queue_size: int = Field(1024, ge=1, description="Pending image requests before round creation answers 503.")
    service_timeout_s: float = Field(30.0, gt=0, description="Longest a request waits for its image.")
    service_global_units: float = Field(
        4000.0,
        gt=0,
        description="Compute the model service admits at once, in units of one fashion-cnn forward+backward of one "
        "image (a PGD-20 round is 20; app/ml/service/cost.py says where each cost comes from); beyond it a round "
        "answers 503 with Retry-After.",
    )
    service_player_units: float = Field(
        60.0,
        gt=0,
        description="Compute one player may have in flight beyond their first job (which is always admitted), in "
        "the same units: a flood of expensive rounds from one client is refused instead of queued ahead of others.",
    )
    torch_threads: int = Field(
        0, ge=0, description="torch intra-op threads in the model worker; 0 means all cores but one (at least 1)."
    )
    model_service_url: str = Field(
        "",
        description="Where the model service runs. Empty (the default): inside the web server, as `make play` does. "
        "A URL such as http://127.0.0.1:8100: a separate `arena modelsvc` process, reached over HTTP; the web "
        "server then never imports torch and keeps running (and recovers by itself) when that process restarts.",
    )
    ready_rounds: int = Field(
        2,
        ge=0,
        le=64,
        description="Ready-round pool (app/game/pool.py): rounds made ahead, per setting in use (opponent, attack, "
        "staircase step), so a new round needs no attack while the player waits; 0 turns it off. Each is used once. "
        "Was ARENA_POOL_SIZE (still read, with a warning).",
    )
    ready_round_ttl_s: float = Field(
        600.0,
        gt=0,
        description="Seconds a round made ahead stays usable before it is dropped. Was ARENA_POOL_TTL_S (still "
        "read, with a warning).",
    )
    stock_interval_s: float = Field(
        2.0,
        ge=0,
        le=3600,
        description="Event stock (app/game/events/prepare.py): seconds the background maker rests before looking "
        "again for an event short of its prepared images (rounds × expected players); 0 turns it off, and "
        "`arena prepare` still makes them.",
    )

    cloak_dir: Path = Field(
        PROJECT_ROOT / "var" / "cloak",
        description="/cloak results (cleaned upload, cloaked PNG, difference) live here until they expire.",
    )
    cloak_result_ttl_s: float = Field(
        600.0, gt=0, le=86400, description="Seconds a cloak result is kept for download before it is deleted."
    )
    cloak_max_side: int = Field(
        1024, ge=64, le=8192, description="Uploads larger than this on the long side are scaled down to be cloaked."
    )
    cloak_queue_size: int = Field(
        8,
        ge=1,
        le=1000,
        description="Classifications and natural-photo rounds that may wait for the cloak worker; one more "
        "answers 503 with Retry-After.",
    )
    cloak_steps: int = Field(10, ge=1, le=200, description="PGD steps of a cloak (EOT cloaks use the same number).")
    cloak_transfer: bool = Field(
        True, description="Also ask EfficientNet-Lite2 (the transfer target) about the cloaked photo."
    )
    natural_dir: Path | None = Field(
        None, description="Extra photos for /natural rounds: <dir>/<ImageNet class name>/<photo>.jpg|png|webp."
    )
    fool_text_budget: float = Field(
        0.25,
        gt=0.0,
        le=1.0,
        description="Fool the machine yourself (/fool/text): the share of a definition's words a player may change.",
    )
    text_opponents: str = Field(
        "definitions-tfidf,definitions-minilm",
        description="Text opponents the model service plays text rounds with, comma-separated, the default first; "
        "each loads on its first text round.",
    )

    @model_validator(mode="before")
    @classmethod
    def _read_renamed_variables(cls, values: Any) -> Any:
        """An old variable sets its field unless the new name (or an argument) already did, and says so once."""
        if not isinstance(values, dict):
            return values
        for old, field in RENAMED_ENV.items():
            if not os.environ.get(old):  # empty counts as unset, as env_ignore_empty says
                continue
            warnings.warn(f"{old} is deprecated: set {env_name(field)} instead", FutureWarning, stacklevel=2)
            values.setdefault(field, os.environ[old])
        return values

    @field_validator(
        "rate_limit_per_address",
        "rate_limit_per_player",
        "rate_limit_new_players",
        "rate_limit_strokes_per_address",
        "rate_limit_strokes_per_player",
    )
    @classmethod
    def _known_rate_notation(cls, value: str) -> str:
        parse_many(value)  # a typo is refused at start-up, not on the first request it would limit
        return value

    @model_validator(mode="after")
    def _refuse_default_secret_outside_local(self) -> Settings:
        if self.secret_key.get_secret_value() == DEFAULT_SECRET:
            if self.environment == "production":
                raise ValueError(
                    "ARENA_SECRET_KEY must be set to a long random value when ARENA_ENVIRONMENT=production"
                )
            logger.warning("ARENA_SECRET_KEY is the built-in default: fine on your laptop, never in production")
        return self

    def opponent_choice(self, available: list[str]) -> list[str]:
        """The opponents the model service loads, the default first; ``available`` is what the registry knows."""
        wanted = available if self.opponents.strip() == "auto" else [n.strip() for n in self.opponents.split(",")]
        return [self.opponent] + [name for name in wanted if name and name != self.opponent]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()


class LogSettings(BaseSettings):
    """How `arena` logs. Apart from Settings because the command reads them before anything else, when creating
    Settings would already log (the built-in secret's warning) to a logging not yet set up."""

    model_config = SettingsConfigDict(env_prefix="ARENA_", env_file=".env", env_ignore_empty=True, extra="ignore")

    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        "info", description="Least level `arena` logs (or `arena --log-level LEVEL COMMAND`)."
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="text: time, level, logger and message a line; json: one JSON object a line, for a log "
        "collector (or `arena --log-format json COMMAND`).",
    )


DOCUMENTED = (Settings, LogSettings)


def all_fields() -> dict[str, Any]:
    return {name: field for kind in DOCUMENTED for name, field in kind.model_fields.items()}


def shown_default(name: str) -> str:
    """A field's default as the docs show it: paths relative to the checkout, the built-in secret not printed."""
    field = all_fields()[name]
    value = field.get_default(call_default_factory=True)
    if isinstance(value, SecretStr):
        return "a built-in development value" if value.get_secret_value() else "(empty)"
    if value is None:
        return "(unset)"
    if value == "":
        return "(empty)"
    if isinstance(value, bool):
        return str(value).lower()
    text = str(value)
    return text.replace(str(PROJECT_ROOT), "<repo>")


def env_name(name: str) -> str:
    return f"{Settings.model_config['env_prefix']}{name.upper()}"


def settings_table() -> str:
    """The README's settings table, made from the fields so the docs cannot drift from the code."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in all_fields().items():
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{env_name(name)}` | `{shown_default(name)}` | {meaning} |")
    return "\n".join(rows) + "\n"


def env_example() -> str:
    """`.env.example`: every setting commented out at its default, with its meaning."""
    lines = [
        "# Adversarial Arena settings: copy to .env and uncomment what you change (made by `python -m app.config`)."
    ]
    for name, field in all_fields().items():
        default = shown_default(name)
        value = "" if default in ("(unset)", "(empty)", "a built-in development value") else default
        lines += ["", f"# {field.description}", f"# {env_name(name)}={value}"]
    return "\n".join(lines) + "\n"


README = PROJECT_ROOT / "README.md"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
TABLE_START, TABLE_END = "<!-- settings table: made by `python -m app.config` -->\n", "<!-- end of settings table -->"


def readme_with_table(readme: str) -> str:
    start, end = readme.index(TABLE_START) + len(TABLE_START), readme.index(TABLE_END)
    return readme[:start] + settings_table() + readme[end:]


if __name__ == "__main__":
    README.write_text(readme_with_table(README.read_text()))
    ENV_EXAMPLE.write_text(env_example())
    print(f"wrote the settings table in {README.name} and {ENV_EXAMPLE.name}")
