"""Pick the moments (issue 19): the rules of the policy game and the lab's episodes. No HTTP, no torch.

A round is a seeded CartPole episode of the DQN agent. The player may attack at most K of its steps with an L∞
budget on the normalised state, and tries to topple the pole sooner than the strategically-timed heuristic (Lin et
al. 2017) does with the same K and budget. The heuristic's episode is run when the round starts and stays hidden
until the round is played; the player's episode is run by the server from the player's picks (a client never sends
a result). Fewer steps survived than the heuristic is a win, worth :data:`WIN_POINTS` plus up to
:data:`MARGIN_POINTS` more by the margin; the same number of steps is a tie. One result per round, one unplayed
round per player, both decided by the database.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import messages
from app.db.session import connection_released
from app.db.tables import PlayerRecord, PolicyRoundRecord, new_id, utcnow
from app.errors import Conflict, Forbidden, Invalid, NotFound, ServiceUnavailable
from app.game.events.clock import utcnow as event_clock
from app.game.events.codes import event_by_id
from app.game.events.joining import check_player_active
from app.game.events.lifecycle import require_running
from app.game.events.settings import event_settings
from app.ml.service.episode_contracts import (
    ATTACKS,
    DEFAULT_AGENT,
    DEFAULT_THRESHOLD,
    MAX_BUDGET,
    MAX_SEED,
    MAX_STEPS,
    EpisodeJob,
    EpisodeResult,
    EpisodeService,
)

BUDGETS = (0.05, 0.1, 0.15, 0.2)
ATTACK_COUNTS = (1, 3, 5, 10)
DEFAULT_BUDGET = 0.1
DEFAULT_COUNT = 3
WIN_POINTS = 10
MARGIN_POINTS = 40
TIE_POINTS = 2
OUTCOMES = ("win", "tie", "loss")

# What each attack does, in plain words (the lab page and the API say the same).
ATTACK_WORDS = {
    "none": "No attack: the agent sees the true state of the cart and the pole.",
    "fgsm": "FGSM at every step (Huang et al. 2017): each observation is nudged, within the budget, in the direction "
    "that most lowers the agent's liking for the push it was about to make.",
    "timed": "Strategically timed (Lin et al. 2017): the attacker waits for moments when the agent strongly prefers "
    "one push over the other, and only then nudges the observation toward the push the agent likes least, for at "
    "most K steps in the whole episode.",
    "induction": "Policy induction (Behzadan & Munir 2017): the attacker never touches the agent's network. It "
    "trained a replica of its own and crafts each nudge on the replica, steering toward the push the replica values "
    "least; the same nudge is then shown to the real agent.",
}


@dataclass(frozen=True)
class PolicySetting:
    """A round's budget (L∞ on the normalised state) and K, the most steps the player and the heuristic may attack."""

    budget: float = DEFAULT_BUDGET
    attacked_steps: int = DEFAULT_COUNT


def check_setting(budget: object, attacked_steps: object) -> PolicySetting:
    """The setting a player asked for, or Invalid naming the choices."""
    problem = Invalid(
        messages.POLICY_SETTING_INVALID.format(
            budgets=", ".join(f"{b:g}" for b in BUDGETS), counts=", ".join(str(k) for k in ATTACK_COUNTS)
        )
    )
    try:
        value = float(budget)  # type: ignore[arg-type]
        count = int(attacked_steps)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise problem from None
    chosen = [b for b in BUDGETS if abs(b - value) < 1e-9]
    if not chosen or count not in ATTACK_COUNTS or isinstance(attacked_steps, bool):
        raise problem
    return PolicySetting(budget=chosen[0], attacked_steps=count)


def parse_picks(raw: str | Sequence[object], limit: int) -> tuple[int, ...]:
    """The player's steps: a list of whole numbers or text like "12, 40 41"; sorted, each once, at most ``limit``."""
    problem = Invalid(messages.POLICY_STEPS_INVALID.format(k=limit, last=MAX_STEPS - 1))
    items: Sequence[object] = [part for part in re.split(r"[\s,;]+", raw) if part] if isinstance(raw, str) else raw
    steps = set()
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise problem
        try:
            step = int(item)
        except ValueError:
            raise problem from None
        if not 0 <= step < MAX_STEPS:
            raise problem
        steps.add(step)
    if len(steps) > limit:
        raise problem
    return tuple(sorted(steps))


def score_round(player_return: int, heuristic_return: int) -> tuple[str, int]:
    """(outcome, points): a win when the player's pole fell sooner than the heuristic's, by margin."""
    if player_return < heuristic_return:
        return "win", WIN_POINTS + round(MARGIN_POINTS * (heuristic_return - player_return) / heuristic_return)
    if player_return == heuristic_return:
        return "tie", TIE_POINTS
    return "loss", 0


def episode_service(service: object) -> EpisodeService:
    if not isinstance(service, EpisodeService):
        raise ServiceUnavailable(messages.POLICY_UNSUPPORTED)
    return service


# -- the jobs of a round -------------------------------------------------------------------------------------------


# ``client`` is who asks (a player id), ``share`` whose turns of the model worker the episode takes (opaque here: the
# routes pass one key per client address, so that one address with many players takes one share).


def clean_job(record: PolicyRoundRecord, client: str = "", share: str = "") -> EpisodeJob:
    return EpisodeJob(agent=record.agent, seed=record.seed, client=client, share=share)


def heuristic_job(record: PolicyRoundRecord, client: str = "", share: str = "") -> EpisodeJob:
    return EpisodeJob(
        agent=record.agent,
        attack="timed",
        budget=record.budget,
        seed=record.seed,
        max_attacked_steps=record.max_attacked_steps,
        threshold=record.threshold,
        client=client,
        share=share,
    )


def player_job(record: PolicyRoundRecord, picks: Sequence[int], client: str = "", share: str = "") -> EpisodeJob:
    return EpisodeJob(
        agent=record.agent,
        attack="timed",
        budget=record.budget,
        seed=record.seed,
        max_attacked_steps=record.max_attacked_steps,
        steps=tuple(picks),
        threshold=record.threshold,
        client=client,
        share=share,
    )


# -- the round's life ----------------------------------------------------------------------------------------------


async def pending_policy_round(session: AsyncSession, player_id: str) -> PolicyRoundRecord | None:
    query = select(PolicyRoundRecord).where(PolicyRoundRecord.pending_player_id == player_id)
    return (await session.scalars(query)).first()


async def check_event(session: AsyncSession, player: PlayerRecord, *, starting: bool) -> None:
    """An event's player plays pick the moments only while their event runs and plays it (mode "policy"), within
    its rounds per player; anyone else plays freely."""
    if player.event_id is None:
        return
    check_player_active(player)
    event = await event_by_id(session, player.event_id)
    require_running(event, event_clock())
    settings = event_settings(event)
    if settings.mode != "policy":
        raise Conflict(messages.EVENT_IMAGES_ONLY)
    if starting and settings.rounds is not None:
        query = select(func.count(PolicyRoundRecord.id)).where(PolicyRoundRecord.player_id == player.id)
        if int(await session.scalar(query) or 0) >= settings.rounds:
            raise Conflict(messages.EVENT_ROUNDS_DONE)


async def start_round(
    session: AsyncSession,
    service: object,
    *,
    player: PlayerRecord,
    setting: PolicySetting,
    seed: int | None = None,
    client_key: str = "",
) -> PolicyRoundRecord:
    """The player's unplayed round if they have one (whatever they asked for: no shopping for an easy seed), else
    a new one: a fresh seed, the clean and the heuristic's episodes run (in ``client_key``'s share), the round
    stored; committed."""
    episodes = episode_service(service)
    player_id, event_id = player.id, player.event_id
    pending = await pending_policy_round(session, player_id)
    if pending is not None:
        return pending
    await check_event(session, player, starting=True)
    seed = secrets.randbelow(MAX_SEED) if seed is None else seed
    record = PolicyRoundRecord(
        id=new_id(),
        player_id=player_id,
        event_id=event_id,
        agent=DEFAULT_AGENT,
        seed=seed,
        budget=setting.budget,
        max_attacked_steps=setting.attacked_steps,
        threshold=DEFAULT_THRESHOLD,
    )
    # Nothing written yet: the episodes run without holding a database connection.
    jobs = clean_job(record, player_id, client_key), heuristic_job(record, player_id, client_key)
    async with connection_released(session, player):
        clean = await episodes.run_episode(jobs[0])
        heuristic = await episodes.run_episode(jobs[1])
    record.clean_return = clean.total_return
    record.heuristic_return = heuristic.total_return
    record.heuristic_steps = list(heuristic.attacked_steps)
    record.pending_player_id = player_id
    session.add(record)
    try:
        await session.commit()
    except IntegrityError:  # another request of this player stored its round first: that one is theirs
        await session.rollback()
        await session.refresh(player)
        winner = await pending_policy_round(session, player_id)
        if winner is None:
            raise
        return winner
    return record


async def player_round(session: AsyncSession, *, player: PlayerRecord, round_id: str) -> PolicyRoundRecord:
    record = await session.get(PolicyRoundRecord, round_id)
    if record is None:
        raise NotFound(messages.POLICY_ROUND_NOT_FOUND)
    if record.player_id != player.id:
        raise Forbidden(messages.POLICY_NOT_YOUR_ROUND)
    return record


async def play_round(
    session: AsyncSession,
    service: object,
    *,
    player: PlayerRecord,
    round_id: str,
    picks: Sequence[int],
    client_key: str = "",
) -> PolicyRoundRecord:
    """Run the episode with the player's picks, score it against the heuristic and store the one result; committed.
    A round already played is a Conflict, even when two plays race (the UPDATE only matches an unplayed round)."""
    episodes = episode_service(service)
    record = await player_round(session, player=player, round_id=round_id)
    if record.played_at is not None:
        raise Conflict(messages.POLICY_ROUND_PLAYED)
    await check_event(session, player, starting=False)
    steps = parse_picks(list(picks), record.max_attacked_steps)
    job, heuristic_return = player_job(record, steps, player.id, client_key), record.heuristic_return
    async with connection_released(session, record, player):  # read before: the release expires what was loaded
        played = await episodes.run_episode(job)
    outcome, points = score_round(played.total_return, heuristic_return)
    result = await session.execute(
        update(PolicyRoundRecord)
        .where(PolicyRoundRecord.id == record.id, PolicyRoundRecord.played_at.is_(None))
        .values(
            played_at=utcnow(),
            picks=list(steps),
            player_return=played.total_return,
            outcome=outcome,
            points=points,
            pending_player_id=None,
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        await session.rollback()
        await session.refresh(player)
        raise Conflict(messages.POLICY_ROUND_PLAYED)
    await session.commit()
    await session.refresh(record)
    return record


@dataclass(frozen=True)
class RoundEpisodes:
    """What a round's page draws: the clean episode always; once played, the heuristic's and the player's."""

    clean: EpisodeResult
    heuristic: EpisodeResult | None = None
    played: EpisodeResult | None = None


async def round_episodes(
    service: object, record: PolicyRoundRecord, client: str = "", share: str = ""
) -> RoundEpisodes:
    """Replayed from the round's seed (bit for bit what was scored); the heuristic's only after the round was played,
    so the page never shows the player the moments the heuristic picked before they pick their own."""
    episodes = episode_service(service)
    clean = await episodes.run_episode(clean_job(record, client, share))
    if record.played_at is None or record.picks is None:
        return RoundEpisodes(clean=clean)
    heuristic = await episodes.run_episode(heuristic_job(record, client, share))
    played = await episodes.run_episode(player_job(record, record.picks, client, share))
    return RoundEpisodes(clean=clean, heuristic=heuristic, played=played)


# -- the lab -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabChoice:
    attack: str = "timed"
    budget: float = DEFAULT_BUDGET
    seed: int = 1000
    attacked_steps: int = 10


def check_lab_choice(attack: str, budget: float, seed: int, attacked_steps: int) -> LabChoice:
    if (
        attack not in ATTACKS
        or attack == "none"
        or not 0.0 <= budget <= MAX_BUDGET
        or not 0 <= seed <= MAX_SEED
        or not 0 <= attacked_steps <= MAX_STEPS
    ):
        raise Invalid(messages.POLICY_LAB_INVALID.format(attacks=", ".join(a for a in ATTACKS if a != "none")))
    return LabChoice(attack=attack, budget=budget, seed=seed, attacked_steps=min(attacked_steps, 100))


async def lab_episodes(
    service: object, choice: LabChoice, client: str = "", share: str = ""
) -> tuple[EpisodeResult, EpisodeResult]:
    """The same seeded episode clean and under the chosen attack, one after the other (one per client at a time)."""
    episodes = episode_service(service)
    clean = await episodes.run_episode(EpisodeJob(seed=choice.seed, client=client, share=share))
    attacked = await episodes.run_episode(
        EpisodeJob(
            attack=choice.attack,
            budget=choice.budget,
            seed=choice.seed,
            max_attacked_steps=choice.attacked_steps,
            client=client,
            share=share,
        )
    )
    return clean, attacked
