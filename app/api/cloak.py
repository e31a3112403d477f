"""POST /api/v1/cloak: cloak an uploaded photo against the ImageNet opponent and answer with JSON.

The /cloak page calls :func:`start_cloak` too, so both parse, validate and run a cloak the same way. The upload is
read into memory with a hard cap (the request is refused from its Content-Length before the body is parsed when
it is plainly too big), never written under a name on disk, and never stored in the game database.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.types import Message

from app import messages
from app.api.openapi import multipart_form, problem_responses
from app.errors import Invalid, ServiceBusy
from app.ml.cloak.service import CloakJob, CloakService
from app.ml.cloak.uploads import TOO_LARGE, UploadRejected

router = APIRouter(prefix="/api/v1", tags=["cloak"])

FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the small text fields
FILE_MISSING = "Attach the photo as the multipart field 'file' (JPEG, PNG or WebP)."


class PredictionOut(BaseModel):
    index: int
    name: str
    probability: float


class MatchOut(BaseModel):
    engine: str
    held_out: bool
    rank: int
    distance: float
    threshold: float
    k: int
    beaten: bool


class SurvivalOut(BaseModel):
    check: str
    top1: PredictionOut
    goal_met: bool
    heldout_top1: PredictionOut | None
    heldout_goal_met: bool | None
    engines: list[MatchOut]
    survives: bool


class FamilyOut(BaseModel):
    name: str
    wnid: str
    classes: int
    of: list[str]
    dropped: list[str]


class TransferOut(BaseModel):
    model: str
    before: PredictionOut
    after: PredictionOut
    fooled: bool


class CloakOut(BaseModel):
    model: str
    goal: str
    success: bool
    family: FamilyOut | None
    path: list[str]
    search: list[MatchOut]
    beats_search: bool
    source: PredictionOut
    target: PredictionOut | None
    before: list[PredictionOut]
    after: list[PredictionOut]
    eps: float
    eps_grey_levels: int
    linf: float
    l2: float
    method: str
    steps: int
    eot: bool
    survival: list[SurvivalOut]
    transfer: TransferOut | None
    width: int
    height: int
    notes: list[str]
    png_url: str
    original_url: str
    difference_url: str
    page_url: str
    expires_in_s: float
    seconds: float
    attack_seconds: float


class UploadQueue:
    """A bound on the classifications and natural-photo rounds waiting for the cloak service's one worker (a
    cloak itself is refused while another runs): beyond ``limit`` the request answers 503 with Retry-After
    instead of queueing without end, each with its upload in memory."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.waiting = 0

    @asynccontextmanager
    async def place(self) -> AsyncIterator[None]:
        if self.waiting >= self.limit:
            raise ServiceBusy(messages.UPLOADS_BUSY)
        self.waiting += 1
        try:
            yield
        finally:
            self.waiting -= 1


def upload_queue(request: Request) -> UploadQueue:
    return cast(UploadQueue, request.app.state.upload_queue)


def service_of(request: Request) -> CloakService:
    return cast(CloakService, request.app.state.cloak)


def capped_body(request: Request, max_bytes: int, refusal: UploadRejected) -> Request:
    """The request, its body counted as it streams in: past ``max_bytes`` it raises ``refusal`` at once, so a
    chunked upload without Content-Length is cut at the cap instead of being read in full first."""
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > max_bytes:
            raise refusal
        return message

    return Request(request.scope, receive)


async def read_cloak_form(request: Request, service: CloakService) -> tuple[bytes, dict[str, str]]:
    """The upload's bytes (capped) and the text fields of a multipart cloak request."""
    declared = request.headers.get("content-length")
    too_large = UploadRejected(TOO_LARGE.format(limit_mb=service.max_bytes / 1024 / 1024), status_code=413)
    if declared is not None and declared.isdigit() and int(declared) > service.max_bytes + FORM_OVERHEAD:
        raise too_large
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise Invalid(FILE_MISSING)
    request = capped_body(request, service.max_bytes + FORM_OVERHEAD, too_large)
    async with request.form(max_files=1, max_fields=16, max_part_size=FORM_OVERHEAD) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Invalid(FILE_MISSING)
        data = await upload.read(service.max_bytes + 1)
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
    if len(data) > service.max_bytes:
        raise too_large
    return data, fields


def parse_float(value: str | None, name: str) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        return float(value)
    except ValueError:
        raise Invalid(f"{name} must be a number.") from None


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "on", "yes")


async def start_cloak(request: Request, data: bytes, fields: dict[str, str]) -> CloakJob:
    service = service_of(request)
    options = service.parse_options(
        eps=parse_float(fields.get("eps"), "eps"),
        strength=fields.get("strength"),
        target=fields.get("target"),
        eot=truthy(fields.get("eot")),
        method=(fields.get("method") or "pgd").strip().lower(),
        goal=fields.get("goal"),
    )
    return await service.submit(data, options)


def prediction(p: Any) -> dict[str, Any]:
    return {"index": p.index, "name": p.name, "probability": round(p.probability, 6)}


def match(m: Any, held_out: tuple[str, ...] = ("pdq", "embedding-lite2")) -> dict[str, Any]:
    return {
        "engine": m.engine,
        "held_out": m.engine in held_out,
        "rank": m.rank,
        "distance": round(float(m.distance), 6),
        "threshold": round(float(m.threshold), 6),
        "k": m.k,
        "beaten": m.beaten,
    }


def survival_row(row: Any) -> dict[str, Any]:
    return {
        "check": row.check,
        "top1": prediction(row.top1),
        "goal_met": row.goal_met,
        "heldout_top1": prediction(row.heldout_top1) if row.heldout_top1 is not None else None,
        "heldout_goal_met": row.heldout_goal_met,
        "engines": [match(m) for m in row.matches],
        "survives": row.survives,
    }


def family_summary(family: Any, names: tuple[str, ...]) -> dict[str, Any] | None:
    if family is None:
        return None
    return {
        "name": family.name,
        "wnid": family.synset.wnid,
        "classes": len(family.members),
        "of": [names[i] for i in family.of],
        "dropped": [names[i] for i in family.dropped],
    }


def job_summary(request: Request, job: CloakJob, service: CloakService) -> dict[str, Any]:
    """The result as plain data: the API's JSON, and the page's template context."""
    o = job.outcome
    transfer = None
    if o.transfer_before is not None and o.transfer_after is not None and o.transfer_model:
        transfer = {
            "model": o.transfer_model,
            "before": prediction(o.transfer_before),
            "after": prediction(o.transfer_after),
            "fooled": bool(o.transfer_fooled),
        }

    def url(name: str) -> str:
        return str(request.url_for("cloak_file", token=job.token, name=name))

    return {
        "model": "efficientnet-lite0",
        "goal": o.goal,
        "success": o.success,
        "family": family_summary(o.family, service.class_names),
        "path": list(o.path),
        "search": [match(m) for m in o.search],
        "beats_search": o.beats_search,
        "source": prediction(o.source),
        "target": prediction(o.target) if o.target is not None else None,
        "before": [prediction(p) for p in o.before],
        "after": [prediction(p) for p in o.after],
        "eps": o.eps,
        "eps_grey_levels": job.options.eps_levels,
        "linf": o.linf,
        "l2": o.l2,
        "method": o.method,
        "steps": o.steps,
        "eot": o.eot,
        "survival": [survival_row(row) for row in o.survival],
        "transfer": transfer,
        "width": int(o.cloaked.shape[1]),
        "height": int(o.cloaked.shape[0]),
        "notes": list(job.notes),
        "png_url": url("cloaked"),
        "original_url": url("original"),
        "difference_url": url("difference"),
        "page_url": str(request.url_for("cloak_result_page", token=job.token)),
        "expires_in_s": round(max(0.0, job.expires - time.monotonic()), 1),
        "seconds": round(o.seconds, 3),
        "attack_seconds": round(o.attack_seconds, 3),
    }


@router.post(
    "/cloak",
    response_model=CloakOut,
    summary="Cloak a photo against the ImageNet classifier",
    responses=problem_responses(
        {
            413: "File over 10 MB or image over 40 megapixels (or a decompression bomb)",
            415: "Not a JPEG, PNG or WebP image, or an unsupported pixel format",
            422: "Truncated, animated or empty image; bad eps, target, method or goal",
            503: "Another cloak is running (see Retry-After), or the extra is missing",
        }
    ),
    openapi_extra=multipart_form(
        {
            "file": {"type": "string", "format": "binary", "description": "JPEG, PNG or WebP"},
            "target": {"type": "string", "description": "ImageNet class name or index; empty: anything else"},
            "eps": {
                "type": "number",
                "description": "L-inf budget in [0,1] pixel units (1/255 to 16/255); default 4/255",
            },
            "eot": {"type": "boolean", "description": "Survive JPEG and resizing (slower)"},
            "method": {"type": "string", "enum": ["pgd", "cw"]},
            "goal": {
                "type": "string",
                "enum": ["family", "untargeted", "targeted"],
                "description": "family (default): out of the clean top-5's whole WordNet family; untargeted: "
                "anything else; targeted: the target class (the default when a target is given)",
            },
        }
    ),
)
async def cloak_photo(request: Request) -> dict[str, Any]:
    """Upload a photo (multipart field ``file``); the answer has the model's top-5 before and after, the family
    left and the WordNet path between the answers, the search engines' verdicts, the survival table of the
    held-out checks, the size of the change and the URL of the cloaked PNG (kept for a few minutes, then
    deleted)."""
    service = service_of(request)
    data, fields = await read_cloak_form(request, service)
    job = await start_cloak(request, data, fields)
    await service.wait(job)
    return job_summary(request, job, service)


class ClassifyOut(BaseModel):
    model: str
    top5: list[PredictionOut]


@router.post(
    "/classify",
    response_model=ClassifyOut,
    summary="The ImageNet classifier's top-5 on an uploaded image",
    responses=problem_responses(
        {
            413: "File or image too large",
            415: "Not a JPEG, PNG or WebP image",
            422: "Truncated, animated or empty image; unknown model",
            503: "Too many photos waiting for the classifier (see Retry-After), or the extra is missing",
        }
    ),
    openapi_extra=multipart_form(
        {
            "file": {"type": "string", "format": "binary"},
            "model": {"type": "string", "enum": ["efficientnet-lite0", "efficientnet-lite2"]},
        }
    ),
)
async def classify_photo(request: Request) -> dict[str, Any]:
    """The same validation as a cloak, then one forward pass; nothing is kept. This is the project's own
    classifier over HTTP, the target the remote opponent (app/ml/cloak/remote.py) is tested against."""
    service = service_of(request)
    async with upload_queue(request).place():
        data, fields = await read_cloak_form(request, service)
        return await service.classify(data, fields.get("model") or None)
