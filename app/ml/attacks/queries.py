"""The query interface black-box attacks reach the model through: answers only, counted, budgeted per sample.

A black-box attack never holds the model. It gets a :class:`QueryCounter`, which answers either probabilities
(``mode="score"``) or only the top label (``mode="decision"``), counts every image it is shown against the
sample that image belongs to, and refuses a query that would take any sample past its budget (raising
:class:`QueryBudgetExceeded` before the model runs, so a buggy attack cannot quietly overspend). Attacks ask
:meth:`QueryCounter.remaining` and query only their active (not yet fooled) samples.

The base class's final forward pass, which measures success on the returned images, is the arena's check,
not the attacker's, and is not counted.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

import torch
from torch import Tensor

from app.ml.attacks.base import Attack, RunOutput
from app.ml.attacks.common import forward_bucketed
from app.ml.attacks.inputs import AttackBatch
from app.ml.model import ArenaModel

QueryMode = Literal["score", "decision"]


class QueryBudgetExceeded(RuntimeError):
    """An attack asked for more queries than some sample's budget allows (a bug in the attack)."""


class QueryCounter:
    """Wraps a model for one attack call on a batch of ``batch_size`` samples, each with ``budget`` queries."""

    def __init__(self, model: ArenaModel, batch_size: int, budget: int, mode: QueryMode) -> None:
        if mode not in ("score", "decision"):
            raise ValueError(f"mode must be 'score' or 'decision', got {mode!r}")
        if budget < 0:
            raise ValueError(f"budget must be >= 0, got {budget}")
        self._model = model
        self.mode: QueryMode = mode
        self.budget = int(budget)
        self.counts = torch.zeros(batch_size, dtype=torch.int64)
        self.image_shape = model.image_shape
        self.num_classes = model.num_classes
        self.bounds = model.bounds

    def remaining(self, idx: Tensor | None = None) -> Tensor:
        """Queries each sample (or each of ``idx``) may still make."""
        left = self.budget - self.counts
        return left if idx is None else left[idx.cpu()]

    def affordable(self, pending: Tensor, cost: int = 1) -> Tensor:
        """The indices of the samples ``pending`` (a bool mask) whose budget still pays for ``cost`` queries."""
        return torch.nonzero(pending & (self.remaining().to(pending.device) >= cost)).squeeze(1)

    def _answer(self, images: Tensor, idx: Tensor) -> Tensor:
        """Forward ``images`` shaped (n, C,H,W) or (n, k, C,H,W) for samples ``idx`` (n,), charging k each."""
        if images.ndim == 4:
            per_sample, flat = 1, images
        elif images.ndim == 5:
            per_sample, flat = images.shape[1], images.flatten(0, 1)
        else:
            raise ValueError(f"queries must be shaped (n,C,H,W) or (n,k,C,H,W), got {tuple(images.shape)}")
        if idx.ndim != 1 or idx.shape[0] != images.shape[0]:
            raise ValueError(f"idx must name one sample per query row, got {tuple(idx.shape)}")
        idx_cpu = idx.cpu()
        if torch.unique(idx_cpu).numel() != idx_cpu.numel():
            raise ValueError("idx must not repeat a sample; stack a sample's queries along dim 1 instead")
        if bool((self.counts[idx_cpu] + per_sample > self.budget).any()):
            raise QueryBudgetExceeded(
                f"query of {per_sample} image(s) per sample would exceed the budget of {self.budget}"
            )
        lo, hi = self.bounds
        if bool(flat.min() < lo) or bool(flat.max() > hi):
            raise ValueError(f"queries must lie within the model's bounds {self.bounds}")
        self.counts[idx_cpu] += per_sample
        with torch.no_grad():
            logits = forward_bucketed(self._model, flat)
        if images.ndim == 5:
            logits = logits.view(images.shape[0], per_sample, -1)
        return logits

    def probabilities(self, images: Tensor, idx: Tensor) -> Tensor:
        """Softmax scores, shaped (n, K) or (n, k, K); only in score mode."""
        if self.mode != "score":
            raise PermissionError("a decision-based attack sees only labels, not probabilities")
        return self._answer(images, idx).softmax(-1)

    def labels(self, images: Tensor, idx: Tensor) -> Tensor:
        """The predicted labels, shaped (n,) or (n, k); the only answer a decision-based attack gets."""
        return self._answer(images, idx).argmax(-1)


@dataclass(frozen=True)
class Progress:
    """A query attack's per-sample bookkeeping: the image each sample will return, and whether its search is over."""

    adversarial: Tensor
    done: Tensor

    @classmethod
    def start(cls, images: Tensor) -> Progress:
        """Every sample returns its clean image until the search finds a better one."""
        return cls(images.clone(), torch.zeros(images.shape[0], dtype=torch.bool, device=images.device))

    def take_first_hits(self, rows: Tensor, candidates: Tensor, hits: Tensor) -> Tensor:
        """Samples ``rows`` tried ``candidates`` (n, k, C,H,W), of which ``hits`` (n, k) fool the model: each row
        with a hit returns its first one and is done. Which rows had a hit, as a mask."""
        found = hits.any(1)
        first = hits[found].float().argmax(1)
        self.adversarial[rows[found]] = candidates[found, first]
        self.done[rows[found]] = True
        return found


class QueryAttack(Attack):
    """Base for black-box attacks: :meth:`attack` gets a :class:`QueryCounter`, never the model, and runs under
    ``no_grad``; the per-sample query counts come back in ``AttackResult.queries``.

    Subclasses' ``Params`` must have an int ``max_queries`` (the per-sample budget), and their threat model
    ("score" or "decision") is what the oracle answers: probabilities, or only the top label.
    """

    def __init_subclass__(cls, **declaration: Any) -> None:
        super().__init_subclass__(**declaration)
        if cls.threat_model not in get_args(QueryMode):
            raise TypeError(f"{cls.__name__} is a query attack: its threat_model is 'score' or 'decision'")

    def run(self, model: ArenaModel, batch: AttackBatch) -> RunOutput:
        budget = int(getattr(self.params, "max_queries"))  # noqa: B009 - every QueryAttack's Params has it
        mode = cast(QueryMode, self.threat_model)  # one of QueryMode's, checked when the class was declared
        oracle = QueryCounter(model, batch.images.shape[0], budget, mode)
        with torch.no_grad():
            adversarial = self.attack(oracle, batch)
        return RunOutput(adversarial=adversarial, queries=oracle.counts.clone())

    @abstractmethod
    def attack(self, oracle: QueryCounter, batch: AttackBatch) -> Tensor:
        """Return candidate adversarial images, reaching the model only through ``oracle``."""
