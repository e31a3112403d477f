"""Fool it by hand (issue #21): a painting from its first stroke to the comparison with the machine, and the painted
images served to other players as rounds ("can you still see it?"). Each operation owns the request's transaction
and commits before it returns. The rules are app/game/paint.py; the model service answers through the classify
contracts (app/ml/service/classify_contracts.py), batched with everyone's jobs."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from app import messages
from app.db.paint_tables import PaintingRecord, PaintStrokeRecord, SmallestAttackRecord
from app.db.session import connection_released
from app.db.tables import EventRecord, PlayerRecord, RoundRecord
from app.errors import Conflict, Invalid, NotFound
from app.game import paint
from app.game.events import event_of_player
from app.images import from_png, to_png
from app.live import EventHub
from app.ml.service.classify_contracts import ClassifyJob, SmallestJob, painter_service
from app.ml.service.contracts import ImageJob, ModelService

logger = logging.getLogger(__name__)

HUMAN_ATTACK = "human"  # the attack column of a round that shows a person's painted image
_warming: set[asyncio.Task[Any]] = set()


@dataclass(frozen=True)
class StrokeOutcome:
    record: PaintingRecord
    label: int
    top: tuple[tuple[int, float], ...]  # the opponent's top 3 on the painted pixels, best first
    change: paint.Change
    event_id: str | None


def event_image(event_id: str, eligible: tuple[int, ...]) -> int:
    """Everyone in a workshop paints the same image: one of the opponent's eligible images, fixed by the event."""
    digest = int.from_bytes(hashlib.sha256(event_id.encode()).digest()[:8], "big")
    return eligible[digest % len(eligible)]


def warm_machine_best(service: ModelService, record: PaintingRecord) -> None:
    """Start the machine's smallest attack on the image while the player paints (its result is kept by the model
    service), so that the comparison is ready at the end. Failures only log: the result page asks again."""
    job = SmallestJob(record.opponent, record.image_index, paint.NORM_OF_TOOL[record.tool], client=record.player_id)

    async def search() -> None:
        try:
            await painter_service(service).smallest_attack(job)
        except Exception as error:  # the comparison is asked for again when the painting ends
            logger.warning("the machine's smallest attack on %s #%d failed: %s", job.opponent, job.image_index, error)

    task = asyncio.get_running_loop().create_task(search())
    _warming.add(task)
    task.add_done_callback(_warming.discard)


async def start_painting(
    session: AsyncSession,
    service: ModelService,
    *,
    player: PlayerRecord,
    tool: str,
    budget: int | None = None,
    image_index: int | None = None,
    opponent: str | None = None,
    client_key: str = "",
) -> PaintingRecord:
    """A new painting of an image the opponent gets right: the event's image for a player in a workshop, the one
    asked for when it is eligible, else a random eligible one. Committed. ``client_key`` (opaque here, as in
    rounds.start_round): whose fair share of the model worker the clean image and the answers take."""
    tool, budget = paint.check_tool(tool, budget)
    name = opponent or service.opponent_names()[0]
    info = service.opponent_info(name)
    if len(info.image_shape) not in (2, 3) or not info.eligible_indices:
        raise Invalid(messages.PAINT_PACK_INVALID.format(name=name, pack=info.pack))
    event = await event_of_player(session, player)
    event_id = event.id if event is not None else None  # read now: the wait below expires what was loaded
    if event_id is not None:
        image_index = event_image(event_id, info.eligible_indices)
    elif image_index is None:
        image_index = random.choice(info.eligible_indices)
    elif image_index not in set(info.eligible_indices):
        raise Invalid(messages.PAINT_IMAGE_INVALID)
    job = ImageJob(
        name, "pgd", (), image_index, 0.0, 0, any_image=False, condition="clean", client=player.id, share=client_key
    )
    async with connection_released(session, player):
        image = await service.generate(job)
    record = PaintingRecord(
        player_id=player.id,
        event_id=event_id,
        pack=info.pack,
        opponent=name,
        image_index=image_index,
        true_label=image.true_label,
        tool=tool,
        budget=budget,
        status="painting",
        stroke_count=0,
        model_label=image.clean_label,
        model_probs=list(image.adversarial_probs),
        clean_probs=list(image.adversarial_probs),
        pixels=0,
        l2=0.0,
        linf=0.0,
        points=0,
        clean_png=to_png(image.clean),
        painted_png=to_png(image.clean),
    )
    session.add(record)
    await session.commit()
    warm_machine_best(service, record)
    return record


async def painting_of(session: AsyncSession, *, player: PlayerRecord, painting_id: str) -> PaintingRecord:
    """The player's own painting; anyone else's is reported missing, so ids cannot be probed."""
    record = await session.get(PaintingRecord, painting_id)
    if record is None or record.player_id != player.id:
        raise NotFound(messages.PAINT_NOT_FOUND)
    return record


async def add_stroke(
    session: AsyncSession,
    service: ModelService,
    *,
    player: PlayerRecord,
    painting_id: str,
    stroke: Any,
    client_key: str = "",
) -> StrokeOutcome:
    """Apply one stroke on the server (the client's pixels are never taken), ask the opponent about the painted
    image (in ``client_key``'s fair share) and store stroke, answer and pixels. Won when the answer is no longer the
    true label. A stroke sent while another of the same painting was being answered is refused (409): strokes apply
    in one order."""
    record = await painting_of(session, player=player, painting_id=painting_id)
    paint.check_open(record.status, record.stroke_count)
    clean = from_png(record.clean_png)
    painted = from_png(record.painted_png)  # kept on the row: the accepted strokes are never replayed per stroke
    accepted = paint.parse_stroke(stroke, tool=record.tool, shape=clean.shape)
    painted = paint.apply_stroke(clean, painted, accepted, record.budget)
    change = paint.measure(clean, painted)
    info = service.opponent_info(record.opponent)
    # The session keeps its connection through this short wait (a forward pass, batched): giving it back would cost
    # a rollback and two reloads per stroke, a third of a stroke's time on SQLite (benchmarks/paint_load.py).
    job = ClassifyJob(record.opponent, painted, top_k=len(info.class_names), client=player.id, share=client_key)
    result = await painter_service(service).classify(job)
    probs = [0.0] * len(info.class_names)
    for label, probability in zip(result.labels, result.probabilities, strict=True):
        probs[label] = probability
    fooled = result.label != record.true_label
    record.stroke_count += 1
    stored = PaintStrokeRecord(
        painting_id=record.id,
        number=record.stroke_count,
        stroke=accepted.as_json(),
        label=result.label,
        probabilities=[round(p, 6) for p in probs],
    )
    session.add(stored)
    record.model_label, record.model_probs = result.label, probs
    record.pixels, record.l2, record.linf = change.pixels, change.l2, change.linf
    record.painted_png = to_png(painted)
    if fooled:
        record.status, record.finished_at = "fooled", datetime.now(UTC)
        record.points = paint.points(change, fooled=True)
        player.score += record.points
    try:
        # PaintingRecord.revision is the mapper's version counter: the UPDATE only lands on the revision this
        # stroke was applied to, so a stroke of the same painting answered meanwhile makes this one a 409. Where
        # the INSERT is flushed first, the other stroke's row holds the same (painting, number) key instead.
        await session.commit()
    except (StaleDataError, IntegrityError):
        await session.rollback()
        raise Conflict(messages.PAINT_FINISHED) from None
    top = tuple(zip(result.labels[:3], result.probabilities[:3], strict=True))
    return StrokeOutcome(record=record, label=result.label, top=top, change=change, event_id=record.event_id)


async def give_up(session: AsyncSession, *, player: PlayerRecord, painting_id: str) -> PaintingRecord:
    record = await painting_of(session, player=player, painting_id=painting_id)
    paint.check_open(record.status, 0)
    record.status = "gave_up"
    record.finished_at = datetime.now(UTC)
    await session.commit()
    return record


async def stored_best(session: AsyncSession, opponent: str, image_index: int, norm: str) -> SmallestAttackRecord | None:
    return await session.scalar(
        select(SmallestAttackRecord).where(
            SmallestAttackRecord.opponent == opponent,
            SmallestAttackRecord.image_index == image_index,
            SmallestAttackRecord.norm == norm,
        )
    )


async def machine_best(session: AsyncSession, service: ModelService, record: PaintingRecord) -> SmallestAttackRecord:
    """The machine's smallest attack on the painting's image in its tool's norm: stored once per image and norm,
    computed by the model service the first time (already under way since the painting started)."""
    norm = paint.NORM_OF_TOOL[record.tool]
    found = await stored_best(session, record.opponent, record.image_index, norm)
    if found is not None:
        return found
    job = SmallestJob(record.opponent, record.image_index, norm, client=record.player_id)
    async with connection_released(session, record):
        result = await painter_service(service).smallest_attack(job)
    row = SmallestAttackRecord(
        opponent=result.opponent,
        image_index=result.image_index,
        norm=result.norm,
        attack=result.attack,
        found=result.found,
        pixels=result.pixels,
        l2=result.l2,
        linf=result.linf,
        label=result.label,
        elapsed_ms=result.elapsed_ms,
        adversarial_png=to_png(result.adversarial),
    )
    try:
        async with session.begin_nested():
            session.add(row)
        await session.commit()
    except IntegrityError:  # another painter of the same image stored it first: theirs is the same attack
        await session.rollback()
        stored = await stored_best(session, record.opponent, record.image_index, norm)
        if stored is None:
            raise
        return stored
    return row


def best_as_dict(best: SmallestAttackRecord | None) -> dict[str, Any] | None:
    if best is None:
        return None
    return {"attack": best.attack, "found": best.found, "pixels": best.pixels, "l2": best.l2, "linf": best.linf}


async def serve_painted_round(session: AsyncSession, *, player: PlayerRecord) -> RoundRecord:
    """A round that shows someone else's painting which fooled the opponent ("can you still see it?"), stored like
    a machine-made round (attack ``human``), so the stats compare the two on the same people. A player with a round
    waiting for its answer gets that one back. Committed."""
    pending = await session.scalar(select(RoundRecord).where(RoundRecord.pending_player_id == player.id))
    if pending is not None:
        return pending
    seen = {
        str((params or {}).get("painting"))
        for params in await session.scalars(
            select(RoundRecord.attack_params).where(
                RoundRecord.player_id == player.id, RoundRecord.attack == HUMAN_ATTACK
            )
        )
    }
    candidates = (
        select(PaintingRecord)
        .where(PaintingRecord.status == "fooled", PaintingRecord.player_id != player.id)
        .order_by(func.random())
        .limit(20)
    )
    painting = next((p for p in await session.scalars(candidates) if p.id not in seen), None)
    if painting is None:
        raise NotFound(messages.PAINT_NONE_TO_SEE)
    probs = list(painting.model_probs)
    record = RoundRecord(
        player_id=player.id,
        created_at=datetime.now(UTC),
        pack=painting.pack,
        opponent=painting.opponent,
        attack=HUMAN_ATTACK,
        attack_params={"painting": painting.id, "tool": painting.tool, "budget": painting.budget},
        eps=painting.linf if painting.tool == "brush" else float(painting.pixels),
        norm=paint.NORM_OF_TOOL[painting.tool],
        image_index=painting.image_index,
        seed=0,
        true_label=painting.true_label,
        clean_label=painting.true_label,
        clean_confidence=float(max(painting.clean_probs)),
        model_label=painting.model_label,
        model_confidence=float(probs[painting.model_label]),
        model_probs=probs,
        linf=painting.linf,
        l2=painting.l2,
        condition="adversarial",
        clean_png=painting.clean_png,
        adversarial_png=painting.painted_png,
        level=player.level,
        pending_player_id=player.id,
    )
    session.add(record)
    await session.commit()
    return record


async def painting_by_id(session: AsyncSession, painting_id: str) -> PaintingRecord | None:
    return await session.get(PaintingRecord, painting_id)


async def publish_to_room(session: AsyncSession, hub: EventHub, event_id: str) -> None:
    """Wake the workshop's paint screens (their own channel, so the event's other screens do not redraw): a
    painter's answer may have changed the room's best edits."""
    event = await session.get(EventRecord, event_id)
    if event is not None:
        hub.publish(paint_channel(event.code))


def paint_channel(code: str) -> str:
    """The live hub's channel of an event's paint screens."""
    return f"{code}:paint"
