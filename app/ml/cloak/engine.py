"""Cloak a photo: change it by at most ``eps`` per pixel until the classifier's answer leaves its whole family and
a reverse image search no longer finds it.

The attack runs on the whole (working-size) photo, not on a 224x224 copy: the model's view (resize the shorter
side, centre crop; :func:`app.ml.opponents.imagenet.model_view`) is part of the differentiated graph, so the result
is a full-size image whose every pixel stays within ``eps`` of the upload.

- Goals (app/ml/cloak/goals.py): ``family`` (the default; out of the smallest WordNet hypernym holding the clean
  top-5), ``untargeted`` (off the model's own answer) and ``targeted`` (``target=k``).
- ``method="pgd"``: PGD-L∞ on the cross-entropy (Madry et al. 2018); ``method="cw"``: the same projected steps on
  the Carlini-Wagner margin loss.
- ``search=True`` (the default unless ``away_from`` is given): the same steps also push the photo away from
  itself in the two search engines of app/ml/cloak/search.py: Lite0's feature space (cosine distance, same
  forward pass as the logits) and pHash (a hinge toward a decoy's hash, app/ml/cloak/hash_attack.py). Each
  objective's gradient is scaled to the same mean size; one already met gets a quarter of the weight.
- ``eot=True`` (expectation over transformation, Athalye et al. 2018) averages each step's gradient over the
  image as it is, JPEG re-encoded (straight-through gradient, BPDA), downscaled, and both.

The budget is kept exactly in the delivered 8-bit image: the float attack runs in the ball of
``floor(eps*255)/255`` and the rounded change is clipped to the same number of grey levels. Every verdict (goal,
search engines, the held-out checks of app/ml/cloak/heldout.py) is measured on the delivered image, never assumed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from app.config import PROJECT_ROOT
from app.images import amplified_perturbation
from app.ml.cloak.goals import GOALS, MARGIN, Goal, GoalKind, Method, step_direction
from app.ml.cloak.hash_attack import HashDecoy
from app.ml.cloak.heldout import CheckRow, Measured, survival_table
from app.ml.cloak.search import Engine, Match, SearchIndex, gallery_photos, hashes, load_photo, pdq_bits, phash_bits
from app.ml.cloak.stand_ins import cosine_distance, describe, logits_and_features, to_tensor
from app.ml.cloak.transforms import downscale, jpeg_tensor, straight_through
from app.ml.cloak.wordnet import Family, ImagenetTree, imagenet_tree
from app.ml.model import ArenaModel
from app.ml.opponents.imagenet import MAIN_OPPONENT, TRANSFER_TARGET, class_names, load_imagenet_model
from app.ml.packs.base import DataPackMissing

METHODS: tuple[Method, ...] = ("pgd", "cw")
REL_STEP_SIZE = 2.5  # Madry et al.: step = 2.5 * eps / steps
EOT_VIEWS = 4  # as is, JPEG, downscaled, JPEG + downscaled
INDEX_CACHE = PROJECT_ROOT / "var" / "search-index"

Progress = Callable[[int, int, str, float], None]  # (step, steps, current top-1 name, its probability)


class CloakCancelled(Exception):
    """The caller asked the cloak to stop (the client went away or the server is shutting down)."""


@dataclass(frozen=True)
class Prediction:
    index: int
    name: str
    probability: float


@dataclass(frozen=True)
class CloakOutcome:
    original: np.ndarray  # (H,W,3) uint8
    cloaked: np.ndarray  # (H,W,3) uint8, what the download holds
    difference: np.ndarray  # amplified change, mid-grey = unchanged
    before: tuple[Prediction, ...]  # model's top-5 on the original
    after: tuple[Prediction, ...]  # model's top-5 on the cloaked image
    source: Prediction  # the label the cloak moves away from (the model's own top-1 on the upload)
    target: Prediction | None
    success: bool  # measured on `cloaked`: the goal is met
    linf: float  # pixel units in [0,1], measured on the 8-bit images
    l2: float  # pixel units, whole image
    eps: float
    steps: int
    method: Method
    eot: bool
    survival: tuple[CheckRow, ...]  # the held-out checks; the first row is the image as delivered
    transfer_before: Prediction | None
    transfer_after: Prediction | None
    transfer_model: str | None
    seconds: float
    goal: GoalKind = "untargeted"
    family: Family | None = None
    path: tuple[str, ...] = ()  # WordNet path from the answer before to the answer after
    search: tuple[Match, ...] = field(default=())  # the engines the attack saw, on the delivered image
    attack_seconds: float = 0.0  # the gradient steps and the verdict on the delivered image, without the checks

    @property
    def transfer_fooled(self) -> bool | None:
        if self.transfer_before is None or self.transfer_after is None:
            return None
        if self.target is not None:
            return self.transfer_after.index == self.target.index
        return self.transfer_after.index != self.transfer_before.index

    @property
    def beats_search(self) -> bool:
        return bool(self.search) and all(m.beaten for m in self.search)


def budget_levels(eps: float) -> int:
    """The budget in whole grey levels (what an 8-bit image can actually carry); at least 1."""
    levels = math.floor(eps * 255 + 1e-6)
    if levels < 1:
        raise ValueError(f"eps must be at least 1/255 (one grey level), got {eps}")
    return levels


class CloakEngine:
    """Holds the main opponent, the held-out classifier (loaded on first use) and the search index (built on
    first use, cached on disk), and cloaks one photo at a time.

    Not thread-safe by design: the cloak service calls it from a single worker thread.
    """

    def __init__(
        self,
        *,
        model: ArenaModel | None = None,
        transfer_model: ArenaModel | None = None,
        with_transfer: bool = False,
        device: str | torch.device = "cpu",
        gallery_dir: Path | None = None,
        index_cache: Path | None = INDEX_CACHE,
    ) -> None:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.model = model if model is not None else load_imagenet_model(MAIN_OPPONENT, device=device)
        if transfer_model is None and with_transfer:
            transfer_model = load_imagenet_model(TRANSFER_TARGET, device=device)
        self.transfer_model = transfer_model
        self.class_names = class_names()
        self.resolution = int(self.model.image_shape[-1])
        self.gallery_dir = gallery_dir
        self.index_cache = index_cache
        self.index: SearchIndex | None = None

    # -- judges ----------------------------------------------------------------------------------------------
    @property
    def heldout_model(self) -> ArenaModel:
        if self.transfer_model is None:
            self.transfer_model = load_imagenet_model(TRANSFER_TARGET, device=self.device)
        return self.transfer_model

    @property
    def tree(self) -> ImagenetTree:
        return imagenet_tree()

    def engines(self) -> list[Engine]:
        return [
            Engine("phash", "bits", hashes(phash_bits)),
            Engine("embedding", "vector", lambda images: describe(self.model, images)[1]),
            Engine("pdq", "bits", hashes(pdq_bits), held_out=True),
            Engine("embedding-lite2", "vector", lambda images: describe(self.heldout_model, images)[1], held_out=True),
        ]

    def search_index(self) -> SearchIndex:
        if self.index is None:
            photos = {p.name: load_photo(p) for p in gallery_photos(self.gallery_dir)}
            self.index = SearchIndex.build(photos, self.engines(), cache_dir=self.index_cache)
        return self.index

    def measure(self, pixels: np.ndarray) -> Measured:
        probs, features = describe(self.model, [pixels])
        held_probs, held_features = describe(self.heldout_model, [pixels])
        descriptors = {"phash": phash_bits(pixels), "embedding": features[0], "pdq": pdq_bits(pixels)}
        descriptors["embedding-lite2"] = held_features[0]
        return Measured(probs[0], held_probs[0], descriptors)

    # -- helpers ---------------------------------------------------------------------------------------------
    def _tensor(self, pixels: np.ndarray) -> Tensor:
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ValueError(f"expected (H,W,3) uint8 pixels, got {pixels.dtype} {pixels.shape}")
        return to_tensor(pixels, self.model.device)

    def probabilities(self, pixels: np.ndarray, *, model: ArenaModel | None = None) -> np.ndarray:
        self._tensor(pixels)
        return describe(model or self.model, [pixels])[0][0]

    def top(self, probs: np.ndarray, k: int = 5) -> tuple[Prediction, ...]:
        order = np.argsort(-probs)[:k]
        return tuple(Prediction(int(i), self.class_names[int(i)], float(probs[i])) for i in order)

    def prediction(self, probs: np.ndarray, index: int) -> Prediction:
        return Prediction(int(index), self.class_names[int(index)], float(probs[index]))

    def class_index(self, name_or_index: str | int) -> int:
        """A class by index or by exact (case-insensitive) name."""
        if isinstance(name_or_index, int) or str(name_or_index).strip().isdigit():
            index = int(name_or_index)
            if not 0 <= index < len(self.class_names):
                raise ValueError(f"class index must be 0..{len(self.class_names) - 1}, got {index}")
            return index
        wanted = str(name_or_index).strip().casefold()
        for i, name in enumerate(self.class_names):
            if name.casefold() == wanted:
                return i
        raise ValueError(f"unknown ImageNet class {name_or_index!r}")

    def resolve_goal(
        self, clean_probs: np.ndarray, *, goal: GoalKind | None, target: int | None, away_from: int | None
    ) -> Goal:
        if goal is None:
            goal = "targeted" if target is not None else "untargeted" if away_from is not None else "family"
        if goal not in GOALS:
            raise ValueError(f"goal must be one of {GOALS}, got {goal!r}")
        if goal == "targeted" and target is None:
            raise ValueError("a targeted cloak needs a target class")
        if target is not None and not 0 <= target < self.model.num_classes:
            raise ValueError(f"target must be a class index 0..{self.model.num_classes - 1}, got {target}")
        source = int(clean_probs.argmax()) if away_from is None else int(away_from)
        family = None
        if goal == "family":
            top5 = [int(i) for i in np.argsort(-clean_probs)[:5]]
            family = self.tree.family([source] + [i for i in top5 if i != source][:4])
        return Goal(goal, source, target if goal == "targeted" else None, family)

    def wordnet_path(self, a: int, b: int) -> tuple[str, ...]:
        try:
            return tuple(s.name for s in self.tree.path(a, b))
        except DataPackMissing:
            return ()

    # -- the attack ------------------------------------------------------------------------------------------
    def cloak(
        self,
        pixels: np.ndarray,
        *,
        eps: float,
        steps: int = 10,
        target: int | None = None,
        method: Method = "pgd",
        eot: bool = False,
        seed: int = 0,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
        away_from: int | None = None,
        goal: GoalKind | None = None,
        search: bool | None = None,
        checks: bool | None = None,
        leave_out: str | None = None,  # a gallery photo the search must not count (the one being cloaked)
    ) -> CloakOutcome:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if not 1 <= steps <= 1000:
            raise ValueError(f"steps must be 1..1000, got {steps}")
        levels = budget_levels(eps)
        started = time.perf_counter()
        model = self.model
        clean = self._tensor(pixels)
        original = pixels.astype(np.uint8, copy=False)
        with torch.no_grad():
            clean_logits, clean_features = logits_and_features(model, clean)
        clean_probs = clean_logits.softmax(-1)[0].cpu().numpy()
        aim = self.resolve_goal(clean_probs, goal=goal, target=target, away_from=away_from)
        search = away_from is None if search is None else search
        checks = search if checks is None else checks
        index = self.search_index() if search or checks else None
        exclude = index.names.index(leave_out) if index is not None and leave_out is not None else None
        inside = aim.mask(model.num_classes, clean.device)
        thresholds = index.thresholds if index is not None else {}
        radius = levels / 255.0
        low = (clean - radius).clamp_(0.0, 1.0)
        high = (clean + radius).clamp_(0.0, 1.0)
        step = REL_STEP_SIZE * radius / steps
        generator = torch.Generator(device="cpu").manual_seed(seed)

        decoy = None
        if search and index is not None:
            decoy = torch.from_numpy(index.decoy("embedding", clean_features[0].cpu().numpy())).to(clean.device)
        hash_decoy = HashDecoy.choose(clean, index, exclude) if search and index is not None else None
        pulls: list[Tensor | None] = []  # the distance to the embedding's decoy, of the iterate judged last
        hashed: list[np.ndarray] = []  # the exact pHash of the iterate judged last

        def judge(x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
            views = self._eot_views(x, generator) if eot else [x]
            outputs = [logits_and_features(model, v) for v in views]
            logits = torch.cat([o[0] for o in outputs])
            features = torch.cat([o[1] for o in outputs])
            distance = cosine_distance(features, clean_features)
            pulls[:] = [cosine_distance(features, decoy) if decoy is not None else None]
            hash_loss, hashed[:] = hash_decoy.loss(x) if hash_decoy is not None else (None, [])
            return logits, aim.score(logits, inside, method), distance, hash_loss

        def rank(score: Tensor, distance: Tensor, logits: Tensor) -> tuple[int, float]:
            """(objectives met, their total) on the unchanged view: which iterate to deliver."""
            met = int(aim.met(logits[0].detach().cpu().numpy()))
            total = float(score[0].detach())
            if hash_decoy is not None and hashed:
                embed = float(distance[0].detach()) / float(thresholds["embedding"])
                hash_beaten, hash_progress = hash_decoy.standing(hashed[0])
                met, total = met + int(embed > 1.0) + hash_beaten, total + min(embed, MARGIN) + hash_progress
            return met, total

        adv = clean.clone()
        best, best_rank = clean.clone(), (-1, -math.inf)
        with torch.enable_grad():
            for i in range(steps):
                if should_stop is not None and should_stop():
                    raise CloakCancelled("the cloak was cancelled")
                adv.requires_grad_(True)
                logits, score, distance, hash_loss = judge(adv)
                current = rank(score, distance, logits)
                if current > best_rank:
                    best_rank, best = current, adv.detach().clone()
                hash_met = hash_decoy is not None and hash_decoy.verdict(hashed[0]).beaten
                grad = step_direction(aim, logits, score, distance, hash_loss, adv, thresholds, pulls[0], hash_met)
                adv = adv.detach()
                adv.add_(grad.sign_(), alpha=step)
                adv = torch.maximum(torch.minimum(adv, high), low)
                if progress is not None:
                    probs = logits[0].detach().softmax(-1)
                    top1 = int(probs.argmax())
                    progress(i + 1, steps, self.class_names[top1], float(probs[top1]))
        with torch.no_grad():  # the last iterate was never scored
            last_logits, last_score, last_distance, _ = judge(adv)
            if rank(last_score, last_distance, last_logits) >= best_rank:
                best = adv

        cloaked = self._quantise(original, best, levels)
        after_probs = self.probabilities(cloaked)
        success = aim.met(after_probs)
        matches: tuple[Match, ...] = ()
        if index is not None and search and not checks:
            after_features = describe(model, [cloaked])[1][0]
            matches = (
                index.lookup("phash", phash_bits(cloaked), phash_bits(original), exclude=exclude),
                index.lookup("embedding", after_features, clean_features[0].cpu().numpy(), exclude=exclude),
            )
        attack_seconds = time.perf_counter() - started
        survival: tuple[CheckRow, ...] = ()
        transfer_before = transfer_after = None
        if checks:
            reference = self.measure(original)
            survival = survival_table(
                cloaked,
                reference,
                measure=self.measure,
                goal_met=aim.met,
                top1=lambda probs: self.top(probs, 1)[0],
                index=index,
                exclude=exclude,
            )
            matches = tuple(m for m in survival[0].matches if not index or not index.engines[m.engine].held_out)
            if reference.heldout_probs is not None:
                transfer_before = self.top(reference.heldout_probs, 1)[0]
                transfer_after = survival[0].heldout_top1
        elif self.transfer_model is not None:
            transfer_before = self.top(self.probabilities(original, model=self.transfer_model), 1)[0]
            transfer_after = self.top(self.probabilities(cloaked, model=self.transfer_model), 1)[0]

        delta = cloaked.astype(np.float64) - original.astype(np.float64)
        after_index = int(after_probs.argmax())
        return CloakOutcome(
            original=original,
            cloaked=cloaked,
            difference=amplified_perturbation(original, cloaked),
            before=self.top(clean_probs),
            after=self.top(after_probs),
            source=self.prediction(clean_probs, aim.source),
            target=self.prediction(after_probs, aim.target) if aim.target is not None else None,
            success=bool(success),
            linf=float(np.abs(delta).max() / 255.0),
            l2=float(np.sqrt((delta**2).sum()) / 255.0),
            eps=levels / 255.0,
            steps=steps,
            method=method,
            eot=eot,
            survival=survival,
            transfer_before=transfer_before,
            transfer_after=transfer_after,
            transfer_model=self.transfer_model.name if self.transfer_model is not None else None,
            seconds=time.perf_counter() - started,
            goal=aim.kind,
            family=aim.family,
            path=self.wordnet_path(int(clean_probs.argmax()), after_index),
            search=matches,
            attack_seconds=attack_seconds,
        )

    def _eot_views(self, adv: Tensor, generator: torch.Generator) -> list[Tensor]:
        """The image as is, JPEG re-encoded (straight-through gradient), downscaled, and both."""
        quality = int(torch.randint(75, 96, (1,), generator=generator))
        scale = float(torch.empty(1).uniform_(0.4, 0.9, generator=generator))
        jpeg = straight_through(adv, lambda x: jpeg_tensor(x, quality))
        return [adv, jpeg, downscale(adv, scale), downscale(jpeg, scale)][:EOT_VIEWS]

    @staticmethod
    def _quantise(original: np.ndarray, adv: Tensor, levels: int) -> np.ndarray:
        rounded = np.rint(adv.detach()[0].permute(1, 2, 0).cpu().numpy() * 255.0)
        delta = np.clip(rounded - original.astype(np.float64), -levels, levels)
        return np.clip(original.astype(np.float64) + delta, 0, 255).astype(np.uint8)
