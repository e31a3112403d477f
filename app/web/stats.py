"""The stats page (/stats): accuracy-vs-budget curves for people and the model with 95% Wilson bands, the table of
groups with error consistency, and confusion matrices, filtered by a plain GET form (works without JavaScript).
The chart is served as PNG and SVG with the same filters. Numbers come from app.stats.science, computed in a worker
thread (never on the event loop) and kept in app.stats.cache until a new answer counts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from app import messages
from app.deps import CookiePlayer, ServiceDep, SessionDep
from app.errors import ArenaError, Invalid, NotFound
from app.game import events
from app.ml.service.contracts import ModelService
from app.stats import science
from app.stats.cache import answers_mark, cache_for
from app.stats.consistency import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED
from app.stats.plots import science as science_plots
from app.stats.plots.figure import CHART_FORMATS
from app.stats.text import pack_class_names
from app.stats.trials import EPS_BUCKET_DOC, StatsFilter, Trial, filter_choices, load_trials
from app.web.routes import render
from app.web.shown_score import SHOWN_SCORE

router = APIRouter(include_in_schema=False, dependencies=SHOWN_SCORE)

Field = Annotated[str, Query(max_length=60)]


async def filter_form(
    event: Field = "",
    pack: Field = "",
    opponent: Field = "",
    attack: Field = "",
    condition: Field = "",
    since: Field = "",
    until: Field = "",
) -> dict[str, str]:
    """The filter form's values as typed (the page and its chart take the same query string)."""
    return {
        "event": event,
        "pack": pack,
        "opponent": opponent,
        "attack": attack,
        "condition": condition,
        "since": since,
        "until": until,
    }


FilterForm = Annotated[dict[str, str], Depends(filter_form)]


@dataclass(frozen=True)
class PageFilters:
    """The form's values as typed (empty meaning 'any'), and what they select."""

    raw: dict[str, str]
    selection: StatsFilter

    @property
    def query(self) -> str:
        return urlencode({k: v for k, v in self.raw.items() if v})


def _day(name: str, value: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Invalid(messages.STATS_DAY_INVALID.format(name=name)) from None


async def page_filters(session: Any, raw: dict[str, str]) -> PageFilters:
    since, until = _day("since", raw["since"]), _day("until", raw["until"])
    if since and until and since > until:
        raise Invalid(messages.STATS_DATES_INVALID)
    event_id = None
    if raw["event"]:
        event = await events.event_by_code(session, raw["event"])
        event_id, raw = event.id, {**raw, "event": event.code}
    selection = StatsFilter(
        event_id=event_id,
        pack=raw["pack"] or None,
        opponent=raw["opponent"] or None,
        attack=raw["attack"] or None,
        condition=raw["condition"] or None,
        since=since,
        until=until,
    )
    return PageFilters(raw=raw, selection=selection)


def class_names_by_pack(service: ModelService, trials: list[Trial]) -> dict[str, tuple[str, ...]]:
    """Class names per pack, from the model service's opponents (or the pack itself when none is loaded)."""
    out: dict[str, tuple[str, ...]] = {}
    labels: dict[str, list[int]] = {}
    for t in trials:
        labels.setdefault(t.pack, []).extend((t.true_label, t.human_answer, t.model_answer))
    for pack, opponent in sorted({(t.pack, t.opponent) for t in trials}):
        if pack in out:
            continue
        try:
            out[pack] = tuple(service.opponent_info(opponent).class_names)
        except (ArenaError, KeyError):
            try:
                out[pack] = pack_class_names(pack)  # the text pack's too
            except KeyError:  # neither loaded nor known here: classes by number
                out[pack] = tuple(str(i) for i in range(max(labels.get(pack, [0])) + 1))
    return out


@dataclass(frozen=True)
class PageNumbers:
    """What the page shows for one selection of trials (cached as a whole)."""

    groups: list[science.GroupStats]
    overall: science.GroupStats | None
    confusions: list[dict[str, Any]]
    trials: int


def page_numbers(trials: list[Trial], names: dict[str, tuple[str, ...]]) -> PageNumbers:
    """The CPU work of the page (bootstrap intervals, confusion matrices): run in a worker thread."""
    groups = science.group_stats(trials, science.DEFAULT_GROUP_BY)
    overall = science.group_stats(trials, ())
    matrices = science.confusion_matrices(trials, {pack: len(n) for pack, n in names.items()})
    confusions = [
        {"pack": pack, "classes": names[pack], "human": matrices.human[pack], "model": matrices.model[pack]}
        for pack in sorted(matrices.human)
    ]
    return PageNumbers(
        groups=groups, overall=overall[0] if overall else None, confusions=confusions, trials=len(trials)
    )


@router.get("/stats", name="stats_page")
async def stats_page(
    request: Request,
    session: SessionDep,
    service: ServiceDep,
    player: CookiePlayer,
    raw: FilterForm,
) -> Response:
    base: dict[str, Any] = {
        "player": player,
        "choices": await filter_choices(session),
        "bootstrap": {"resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED},
        "eps_doc": EPS_BUCKET_DOC,
    }
    try:
        filters = await page_filters(session, raw)
    except (Invalid, NotFound) as error:
        context = {**base, "filters": raw, "error": error.message, "query": "", "groups": [], "overall": None}
        context.update({"confusions": [], "trials": 0})
        return render(request, "pages/stats.html", context, status_code=error.status_code)

    async def compute() -> PageNumbers:
        trials = await load_trials(session, filters.selection)
        return await asyncio.to_thread(page_numbers, trials, class_names_by_pack(service, trials))

    key = ("page", filters.selection, await answers_mark(session))
    numbers = await cache_for(request.app.state).get_or_compute(key, compute)
    context = {
        **base,
        "filters": filters.raw,
        "error": None,
        "query": filters.query,
        "groups": numbers.groups,
        "overall": numbers.overall,
        "confusions": numbers.confusions,
        "trials": numbers.trials,
    }
    return render(request, "pages/stats.html", context)


@router.get("/stats/chart.{fmt}", name="stats_chart")
async def stats_chart(
    request: Request,
    session: SessionDep,
    fmt: str,
    raw: FilterForm,
) -> Response:
    """The accuracy-vs-budget chart as PNG or SVG, with the page's filters."""
    if fmt not in CHART_FORMATS:
        raise NotFound(messages.CHART_UNKNOWN)
    filters = await page_filters(session, raw)
    scope = ", ".join(f"{k} {v}" for k, v in filters.raw.items() if v)
    title = "People (solid) vs model (dashed), 95% Wilson bands" + (f" — {scope}" if scope else "")

    async def compute() -> bytes:
        trials = await load_trials(session, filters.selection)
        return await asyncio.to_thread(chart_bytes, trials, fmt, title)

    key = ("chart", fmt, title, filters.selection, await answers_mark(session))
    data = await cache_for(request.app.state).get_or_compute(key, compute)
    headers = {"Content-Disposition": f'inline; filename="accuracy-vs-eps.{fmt}"', "Cache-Control": "no-store"}
    return Response(data, media_type=CHART_FORMATS[fmt], headers=headers)


def chart_bytes(trials: list[Trial], fmt: str, title: str) -> bytes:
    """Groups without kappa intervals (the chart shows none) and the figure: run in a worker thread."""
    groups = science.group_stats(trials, science.DEFAULT_GROUP_BY, resamples=0)
    return science_plots.accuracy_vs_eps_chart(groups, fmt, title=title)
