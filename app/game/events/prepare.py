"""Preparing an event: its stock of attacked images (app/game/stock.py), made before and while it runs, so that
its players' rounds are claimed from the database instead of waiting for the model.

An event prepares ``settings.stock_target`` images (rounds × expected players; a fixed set: its rounds images, once).
Each is drawn as an own-pace round is (``draw_event_round``): the phases in turn, the condition from the event's
mix, the budget from its levels (a fixed set takes the levels in turn, each as often as the others). The
background maker works only while the model service has no player's job waiting (``until_idle``), a few images at
a time; ``arena prepare`` runs the same steps from the command line.

A player's round claims the oldest unclaimed image of the event among every key its phase may draw
(``phase_stock_keys``) and takes its condition and budget from the image: the images were drawn by the event's rules,
so the rounds still follow its mix and levels (events draw budgets from their levels, not from a player's staircase,
so no exact step is needed). A round that finds no stock is made on demand as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.background import stop_task
from app.db.session import Database
from app.db.tables import EventRecord
from app.errors import ArenaError
from app.game import rounds, stock
from app.game.events.codes import event_by_code
from app.game.events.settings import EventSettings, Phase, event_settings
from app.game.text import is_text_pack

logger = logging.getLogger(__name__)

CHUNK = 4  # images per step: one small batch, so a player who arrives meanwhile waits for little


@dataclass(frozen=True)
class StockProgress:
    made: int
    target: int

    @property
    def done(self) -> bool:
        return self.made >= self.target


def draw_event_round(
    source: rounds.ImageSource, settings: EventSettings, phase: Phase
) -> tuple[rounds.RoundPlan, float]:
    """The plan and L∞ budget of one own-pace round of the event in ``phase``: condition and budget drawn."""
    plan = rounds.RoundPlan(
        opponent=phase.opponent, attack=phase.attack, steps=settings.steps, early_stop=settings.early_stop
    )
    plan = rounds.condition_plan(source, plan, settings.conditions)
    return plan, secrets.choice(settings.eps_levels())


def phase_stock_keys(source: rounds.ImageSource, settings: EventSettings, phase: Phase) -> list[str]:
    """The stock keys an own-pace round of the event in ``phase`` may be served from: each condition the mix can
    draw, at each of the event's budget levels."""
    base = rounds.RoundPlan(
        opponent=phase.opponent, attack=phase.attack, steps=settings.steps, early_stop=settings.early_stop
    )
    info = source.opponent_info(phase.opponent)
    drawable = [name for name, weight in (settings.conditions or {"adversarial": 1.0}).items() if weight > 0]
    keys = []
    for condition in drawable:
        plan = rounds.condition_plan(source, base, {condition: 1.0})
        norm = rounds.attack_entry(source, plan.attack)["norm"]
        for eps in settings.eps_levels():
            keys.append(stock.stock_key(rounds.new_job(plan, info, rounds.round_budget(norm, eps, info))))
    return keys


async def stock_progress(session: AsyncSession, event: EventRecord) -> StockProgress:
    """How far the event's preparation is: what the host console shows as "preparing N of M"."""
    return StockProgress(made=await stock.made_for_event(session, event.id), target=event_settings(event).stock_target)


async def event_needing_stock(database: Database) -> EventRecord | None:
    """The oldest event not yet ended that is short of its stock."""
    async with database.sessionmaker() as session:
        candidates = await session.scalars(
            select(EventRecord).where(EventRecord.status != "ended").order_by(EventRecord.created_at)
        )
        for event in candidates:
            if is_text_pack(event.pack):  # text rounds are made on demand (a TF-IDF round takes milliseconds)
                continue
            target = event_settings(event).stock_target
            if target and await stock.made_for_event(session, event.id) < target:
                return event
    return None


async def prepare_some(database: Database, source: rounds.ImageSource, event: EventRecord) -> StockProgress:
    """Make (and commit) up to CHUNK more images of the event's stock; no connection is held while they are made."""
    settings = event_settings(event)
    async with database.sessionmaker() as session:
        before = await stock_progress(session, event)
    count = min(CHUNK, before.target - before.made)
    if count <= 0:
        return before
    made = []
    for number in range(before.made, before.made + count):
        plan, eps = draw_event_round(source, settings, settings.phases[number % len(settings.phases)])
        if settings.fixed_set:  # every budget as often as the others in the set everyone sees (balanced design)
            levels = settings.eps_levels()
            eps = levels[(number // len(settings.phases)) % len(levels)]
        info = source.opponent_info(plan.opponent)
        attack = rounds.attack_entry(source, plan.attack)
        budget = rounds.round_budget(attack["norm"], eps, info)
        # any_image=False: straight to the model, not a result the ready-round pool keeps for plain play
        job = replace(rounds.new_job(plan, info, budget), any_image=False)
        made.append((job, {**rounds.plan_columns(plan, attack, budget), "pack": info.pack}))
    images = await asyncio.gather(*(source.generate(job) for job, _ in made))
    async with database.sessionmaker() as session:
        for (job, columns), image in zip(made, images, strict=True):
            columns = {**columns, **rounds.image_columns(image), "flash_ms": None}
            session.add(stock.stocked_image(job, columns, event_id=event.id, fixed=settings.fixed_set))
        await session.commit()
    return StockProgress(made=before.made + count, target=before.target)


async def prepare_event(
    database: Database,
    source: rounds.ImageSource,
    code: str,
    on_progress: Callable[[StockProgress], None] = lambda _progress: None,
) -> StockProgress:
    """Make the whole stock of the event with join code ``code`` (``arena prepare``), reporting after each step."""
    async with database.sessionmaker() as session:
        event = await event_by_code(session, code)
        current = await stock_progress(session, event)
    on_progress(current)
    while not current.done:
        current = await prepare_some(database, source, event)
        on_progress(current)
    return current


async def prepare_forever(
    database: Database,
    source: rounds.ImageSource,
    *,
    until_idle: Callable[[], Awaitable[None]] | None,
    interval_s: float,
) -> None:
    """The background maker: while the model service is idle, the stock of the oldest event short of it."""
    while True:
        try:
            if until_idle is not None:
                await until_idle()  # players first
            event = await event_needing_stock(database)
            if event is not None:
                await prepare_some(database, source, event)
                continue
        except ArenaError as error:  # the model service is down or busy: try again later
            logger.info("stock: preparation postponed (%s)", error.message)
        except Exception:
            logger.exception("stock: preparation failed")
        await asyncio.sleep(interval_s)


@contextlib.asynccontextmanager
async def background_preparation(
    database: Database,
    source: rounds.ImageSource,
    *,
    until_idle: Callable[[], Awaitable[None]] | None,
    interval_s: float,
) -> AsyncIterator[None]:
    """``prepare_forever`` for as long as the block runs; nothing when ``interval_s`` is 0."""
    if interval_s <= 0:
        yield
        return
    task = asyncio.create_task(
        prepare_forever(database, source, until_idle=until_idle, interval_s=interval_s), name="event-stock"
    )
    try:
        yield
    finally:
        await stop_task(task)
