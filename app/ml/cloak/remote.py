"""A remote opponent: any HTTP classifier that takes an image and returns labels (and scores, if it has them).

Configured by URL, a request template and response paths, with a query budget and a rate limit, so the seed idea
("tweak my photo until a cloud vision service mislabels it") works against a hosted vision API as well as against
this project's own ``POST /api/v1/classify``. numpy, Pillow and httpx only: no torch.

Request kinds:

- ``multipart``: the image as the multipart field ``file_field`` (this project's API, most self-hosted services);
- ``json``: ``json_template`` with ``{image_base64}`` replaced by the base64 image (Google Cloud Vision style);
- ``raw``: the image bytes as the body (Azure AI Vision style).

Response paths are dotted, with ``[n]`` for an index and ``[*]`` for every element, e.g.
``responses[0].labelAnnotations[*].description``. Header values may name environment variables as ``${NAME}``
(keys stay out of the repository and out of the configuration file). docs/cloak.md shows full examples.

Hosted APIs throttle and bill every query, so the opponent keeps two budgets: ``query_budget`` for its whole life
and ``photo_budget`` per photo (each attack starts a new photo with :meth:`RemoteClassifier.start_photo`). A 429
(or a 503 with ``Retry-After``) is waited out as the server asks (``Retry-After`` in seconds or as an HTTP date,
at most ``max_wait_s`` each, at most ``max_retries`` times in a row) and sent again; throttled answers are not
billed, so they are counted apart (``throttled``). Every attack reports the queries it used.

Attacks (all count against the budgets, one query per image answered):

- :func:`transfer_attack`: send an image cloaked on the local model (EfficientNet-Lite0) once;
- :func:`score_attack`: Square-attack-style random search in the L∞ ball (Andriushchenko et al. 2020) that lowers
  the remote's score for its original label; needs scores;
- :func:`decision_attack`: from an adversarial starting point (e.g. a transfer cloak with a larger budget), a
  binary search along the line to the original keeps the smallest blend the remote still mislabels (the first
  step of Boundary/HopSkipJump); needs only the top label.
"""

from __future__ import annotations

import argparse
import base64
import email.utils
import io
import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np
from PIL import Image

from app.ml.cloak.uploads import to_png, validate_upload


class QueryBudgetExhausted(RuntimeError):
    """The remote opponent's query budget (in all, or for this photo) is spent; raise the budget or stop."""


class Throttled(RuntimeError):
    """The remote classifier kept answering 429 (or 503) past ``max_retries`` waits."""


class RemoteError(RuntimeError):
    """The remote classifier answered with an error or with JSON the response paths do not fit."""


@dataclass(frozen=True)
class RemoteAnswer:
    labels: tuple[str, ...]
    scores: tuple[float, ...] | None

    @property
    def top(self) -> str:
        return self.labels[0] if self.labels else ""

    def score_of(self, label: str) -> float:
        """The score of ``label`` (0 when the remote does not list it among its answers)."""
        if self.scores is None:
            raise RemoteError("this remote classifier returns no scores; use the decision-based attack")
        for name, score in zip(self.labels, self.scores, strict=False):
            if name == label:
                return score
        return 0.0


@dataclass(frozen=True)
class RemoteClassifierConfig:
    url: str
    request: Literal["multipart", "json", "raw"] = "multipart"
    file_field: str = "file"
    form_fields: dict[str, str] = field(default_factory=dict)  # extra multipart fields, e.g. {"model": "..."}
    json_template: str = '{"image": "{image_base64}"}'
    headers: dict[str, str] = field(default_factory=dict)
    labels_path: str = "top5[*].name"
    scores_path: str | None = "top5[*].probability"
    image_format: Literal["PNG", "JPEG"] = "PNG"
    query_budget: int = 1000
    photo_budget: int | None = None  # most queries per photo (None: only query_budget limits)
    rate_limit_per_s: float = 5.0
    timeout_s: float = 30.0
    max_retries: int = 5  # 429/503 answers waited out in a row before giving up
    max_wait_s: float = 60.0  # the longest single wait a Retry-After may ask for


def retry_after_s(value: str | None, default: float, now: float | None = None) -> float:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if value is None or not value.strip():
        return default
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def extract(document: Any, path: str) -> list[Any]:
    """Values at a dotted path with ``[n]`` and ``[*]`` steps; a missing step yields no values."""
    values = [document]
    for part in re.findall(r"[^.\[\]]+|\[\*\]|\[\d+\]", path):
        found: list[Any] = []
        for value in values:
            if part == "[*]":
                if isinstance(value, list):
                    found.extend(value)
            elif part.startswith("["):
                index = int(part[1:-1])
                if isinstance(value, list) and -len(value) <= index < len(value):
                    found.append(value[index])
            elif isinstance(value, dict) and part in value:
                found.append(value[part])
        values = found
    return values


def _expand_env(value: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise RemoteError(f"header refers to ${{{name}}}, which is not set in the environment")
        return os.environ[name]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", replace, value)


class RemoteClassifier:
    """One remote opponent with its own query budget and rate limit (thread-safe)."""

    def __init__(self, config: RemoteClassifierConfig, *, client: httpx.Client | None = None) -> None:
        if config.query_budget < 1 or config.rate_limit_per_s <= 0:
            raise ValueError("query_budget must be >= 1 and rate_limit_per_s > 0")
        if config.photo_budget is not None and config.photo_budget < 1:
            raise ValueError("photo_budget must be >= 1 (or None)")
        self.config = config
        self.queries = 0  # answered (billed) queries, in all
        self.photo_queries = 0  # answered queries since start_photo()
        self.throttled = 0  # 429/503 answers waited out
        self.waited_s = 0.0
        self._client = client or httpx.Client(timeout=config.timeout_s)
        self._lock = threading.Lock()
        self._next_allowed = 0.0
        self.sleep: Callable[[float], None] = time.sleep

    @property
    def remaining(self) -> int:
        left = self.config.query_budget - self.queries
        if self.config.photo_budget is not None:
            left = min(left, self.config.photo_budget - self.photo_queries)
        return left

    def start_photo(self) -> None:
        """A new photo: its own ``photo_budget`` starts again (the life-long ``query_budget`` does not)."""
        with self._lock:
            self.photo_queries = 0

    def close(self) -> None:
        self._client.close()

    def _encode(self, pixels: np.ndarray) -> tuple[bytes, str]:
        buffer = io.BytesIO()
        fmt = self.config.image_format
        Image.fromarray(pixels).save(buffer, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        return buffer.getvalue(), "image/png" if fmt == "PNG" else "image/jpeg"

    def classify(self, pixels: np.ndarray) -> RemoteAnswer:
        """Send one (H,W,3) uint8 image; one query of the budgets once answered (throttled tries are free)."""
        data, mime = self._encode(pixels)
        for attempt in range(self.config.max_retries + 1):
            with self._lock:
                if self.queries >= self.config.query_budget:
                    raise QueryBudgetExhausted(f"the query budget of {self.config.query_budget} is spent")
                budget = self.config.photo_budget
                if budget is not None and self.photo_queries >= budget:
                    raise QueryBudgetExhausted(f"the budget of {budget} queries for this photo is spent")
                wait = self._next_allowed - time.monotonic()
                if wait > 0:
                    self.sleep(wait)
                self._next_allowed = time.monotonic() + 1.0 / self.config.rate_limit_per_s
            response = self._send(data, mime)
            throttled = response.status_code == 429 or (
                response.status_code == 503 and "retry-after" in response.headers
            )
            if not throttled:
                break
            if attempt == self.config.max_retries:
                raise Throttled(f"{self.config.url} still throttled after {attempt + 1} tries")
            pause = min(self.config.max_wait_s, retry_after_s(response.headers.get("retry-after"), 2.0**attempt))
            with self._lock:
                self.throttled += 1
                self.waited_s += pause
                self._next_allowed = max(self._next_allowed, time.monotonic() + pause)
        with self._lock:
            self.queries += 1
            self.photo_queries += 1
        return self._parse(response)

    def _send(self, data: bytes, mime: str) -> httpx.Response:
        headers = {k: _expand_env(v) for k, v in self.config.headers.items()}
        cfg = self.config
        if cfg.request == "multipart":
            files = {cfg.file_field: (f"image.{mime[6:]}", data, mime)}
            return self._client.post(cfg.url, files=files, data=cfg.form_fields, headers=headers)
        if cfg.request == "json":
            body = cfg.json_template.replace("{image_base64}", base64.b64encode(data).decode("ascii"))
            return self._client.post(cfg.url, content=body, headers={"Content-Type": "application/json", **headers})
        return self._client.post(cfg.url, content=data, headers={"Content-Type": mime, **headers})

    def _parse(self, response: httpx.Response) -> RemoteAnswer:
        cfg = self.config
        if response.status_code >= 400:
            raise RemoteError(f"{cfg.url} answered {response.status_code}: {response.text[:200]}")
        document = response.json()
        labels = tuple(str(v) for v in extract(document, cfg.labels_path))
        if not labels:
            raise RemoteError(f"no labels at {cfg.labels_path!r} in the answer: {str(document)[:200]}")
        scores = None
        if cfg.scores_path:
            raw = extract(document, cfg.scores_path)
            if len(raw) != len(labels):
                raise RemoteError(f"{len(raw)} scores at {cfg.scores_path!r} for {len(labels)} labels")
            scores = tuple(float(v) for v in raw)
            order = sorted(range(len(labels)), key=lambda i: -scores[i])  # type: ignore[index]
            labels, scores = tuple(labels[i] for i in order), tuple(scores[i] for i in order)
        return RemoteAnswer(labels=labels, scores=scores)


@dataclass(frozen=True)
class RemoteAttackResult:
    adversarial: np.ndarray
    original_label: str
    final_label: str
    success: bool
    queries: int
    linf: float  # pixel units
    history: tuple[float, ...] = ()  # score of the original label after each accepted step (score attack)


def _linf(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).max() / 255.0)


def transfer_attack(remote: RemoteClassifier, original: np.ndarray, cloaked: np.ndarray) -> RemoteAttackResult:
    """Does a cloak made on the local model also fool the remote one? Two queries (before and after)."""
    remote.start_photo()
    before = remote.classify(original)
    after = remote.classify(cloaked)
    return RemoteAttackResult(cloaked, before.top, after.top, after.top != before.top, 2, _linf(original, cloaked))


def score_attack(
    remote: RemoteClassifier,
    original: np.ndarray,
    *,
    eps: float,
    max_queries: int,
    seed: int = 0,
    p_init: float = 0.1,
    progress: Callable[[int, float], None] | None = None,
) -> RemoteAttackResult:
    """Square-attack-style random search (L∞): vertical stripes of ±eps to start, then random squares whose
    size shrinks over the run, each kept only if the remote's score for its original label goes down."""
    remote.start_photo()
    max_queries = min(max_queries, remote.remaining)
    rng = np.random.default_rng(seed)
    levels = int(np.floor(eps * 255 + 1e-6))
    if levels < 1:
        raise ValueError("eps must be at least one grey level (1/255)")
    h, w, c = original.shape
    base = original.astype(np.int16)
    first = remote.classify(original)
    label = first.top
    used = 1
    delta = rng.choice([-levels, levels], size=(1, w, c)).repeat(h, axis=0).astype(np.int16)

    def image(d: np.ndarray) -> np.ndarray:
        return np.clip(base + d, 0, 255).astype(np.uint8)

    answer = remote.classify(image(delta))
    used += 1
    best = answer.score_of(label)
    history = [first.score_of(label), best]
    while answer.top == label and used < max_queries:
        fraction = p_init * (0.5 ** int(8 * used / max_queries))  # halve the square's area 8 times over the run
        side = max(1, min(h, w, int(round(np.sqrt(fraction * h * w)))))
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        candidate = delta.copy()
        candidate[top : top + side, left : left + side, :] = rng.choice([-levels, levels], size=(1, 1, c))
        trial = remote.classify(image(candidate))
        used += 1
        score = trial.score_of(label)
        if score < best or trial.top != label:
            delta, best, answer = candidate, score, trial
            history.append(best)
        if progress is not None:
            progress(used, best)
    adversarial = image(delta)
    return RemoteAttackResult(
        adversarial, label, answer.top, answer.top != label, used, _linf(original, adversarial), tuple(history)
    )


def decision_attack(
    remote: RemoteClassifier, original: np.ndarray, starting_point: np.ndarray, *, max_queries: int
) -> RemoteAttackResult:
    """Label-only: binary search on the blend ``original + t * (start - original)`` for the smallest ``t`` the
    remote still mislabels. Needs a starting point the remote already mislabels (else reports failure)."""
    remote.start_photo()
    max_queries = min(max_queries, remote.remaining)
    label = remote.classify(original).top
    start_answer = remote.classify(starting_point)
    used = 2
    if start_answer.top == label:
        return RemoteAttackResult(starting_point, label, label, False, used, _linf(original, starting_point))
    base, direction = original.astype(np.float64), starting_point.astype(np.float64) - original.astype(np.float64)
    low, high, best, best_label = 0.0, 1.0, starting_point, start_answer.top
    while used < max_queries and high - low > 1 / 64:
        mid = (low + high) / 2
        candidate = np.clip(np.rint(base + mid * direction), 0, 255).astype(np.uint8)
        answer = remote.classify(candidate)
        used += 1
        if answer.top != label:
            high, best, best_label = mid, candidate, answer.top
        else:
            low = mid
    return RemoteAttackResult(best, label, best_label, True, used, _linf(original, best))


def main(argv: list[str] | None = None) -> None:
    """``python -m app.ml.cloak.remote --config remote.json --image me.jpg --attack transfer|score|decision``."""
    parser = argparse.ArgumentParser(description="Attack a remote HTTP classifier (see docs/cloak.md).")
    parser.add_argument("--config", type=Path, required=True, help="JSON with RemoteClassifierConfig's fields")
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--attack", choices=["transfer", "score", "decision"], default="transfer")
    parser.add_argument("--eps", type=float, default=8, help="budget in grey levels (of 255)")
    parser.add_argument("--queries", type=int, default=500, help="most queries this attack may spend")
    parser.add_argument("--out", type=Path, default=Path("remote-adversarial.png"))
    args = parser.parse_args(argv)
    config = RemoteClassifierConfig(**json.loads(args.config.read_text()))
    remote = RemoteClassifier(config)
    photo = validate_upload(args.image.read_bytes(), max_side=1024).pixels
    eps = args.eps / 255
    if args.attack == "score":
        result = score_attack(remote, photo, eps=eps, max_queries=args.queries)
    else:
        from app.ml.cloak.engine import CloakEngine  # the local model (torch) makes the transfer starting point

        cloaked = CloakEngine().cloak(photo, eps=eps, steps=20, eot=True, search=False, checks=False).cloaked
        if args.attack == "transfer":
            result = transfer_attack(remote, photo, cloaked)
        else:
            result = decision_attack(remote, photo, cloaked, max_queries=args.queries)
    args.out.write_bytes(to_png(result.adversarial))
    verdict = "fooled" if result.success else "not fooled"
    print(  # noqa: T201 - command-line report
        f"{verdict}: {result.original_label!r} -> {result.final_label!r}; L-inf {result.linf * 255:.0f}/255; "
        f"{result.queries} queries ({remote.queries} spent in all); wrote {args.out}"
    )
    remote.close()


if __name__ == "__main__":
    main()
