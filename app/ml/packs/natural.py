"""The natural-image pack: rounds on real photos against EfficientNet-Lite0. Importing it does not import torch.

Photos come from two offline sources with open licences:

- scikit-image's and scikit-learn's sample photos whose ImageNet class is unambiguous (below, with their
  licences; both libraries are BSD-3-Clause and ship the files in their wheels);
- any photos the operator adds: ``<ARENA_NATURAL_DIR>/<ImageNet class name>/<file>.jpg|png|webp``
  (the folder name is the true class; files are checked with the same rules as /cloak uploads).

A round shows the photo cloaked away from its true class and offers four choices: the true class, the model's
label on the cloaked photo, and two distractors. ImageNet's WordNet tree is not available offline here, so the
distractors are the classes the model itself finds most likely on the clean photo after those two. Those are
nearly always siblings in the same WordNet branch (other cats for a cat, other cups for a cup).
"""

from __future__ import annotations

import importlib.util
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.ml.cloak.uploads import validate_upload

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


@dataclass(frozen=True)
class NaturalPhoto:
    name: str
    path: Path
    true_class: str
    credit: str


# (package, file, ImageNet class, credit): only photos whose class is unambiguous in ImageNet's vocabulary
BUILTIN = (
    ("skimage.data", "chelsea.png", "tabby", "scikit-image sample 'chelsea' (Stefan van der Walt), CC0"),
    ("skimage.data", "coffee.png", "espresso", "scikit-image sample 'coffee' (Rachel Michetti), CC0"),
    ("skimage.data", "rocket.jpg", "missile", "scikit-image sample 'rocket' (SpaceX), public domain"),
    (
        "sklearn.datasets",
        "images/china.jpg",
        "palace",
        "scikit-learn sample 'china.jpg' (danielbuechele on Flickr), CC BY 2.0",
    ),
)


def _package_dir(package: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except ImportError:
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def available_photos(class_names: tuple[str, ...], extra_dir: Path | None = None) -> list[NaturalPhoto]:
    """Every photo a natural round can use; unknown class folders are skipped (and logged by the caller)."""
    photos = []
    for package, file, true_class, credit in BUILTIN:
        folder = _package_dir(package)
        if folder is not None and (folder / file).is_file():
            photos.append(NaturalPhoto(Path(file).stem, folder / file, true_class, credit))
    if extra_dir is not None and extra_dir.is_dir():
        known = {name.casefold(): name for name in class_names}
        for class_dir in sorted(p for p in extra_dir.iterdir() if p.is_dir()):
            true_class = known.get(class_dir.name.replace("_", " ").casefold())
            if true_class is None:
                continue
            for path in sorted(class_dir.iterdir()):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    photos.append(NaturalPhoto(path.stem, path, true_class, f"added by the operator ({path.name})"))
    return photos


@dataclass(frozen=True)
class NaturalRound:
    photo: NaturalPhoto
    original: np.ndarray
    shown: np.ndarray
    difference: np.ndarray
    choices: tuple[str, ...]
    true_class: str
    model_answer: str
    model_clean_answer: str
    eps_levels: int

    @property
    def model_fooled(self) -> bool:
        return self.model_answer != self.true_class


def four_choices(true_class: str, model_answer: str, ranked: list[str], rng: random.Random) -> tuple[str, ...]:
    """True class, the model's answer, then the model's next most likely clean classes, shuffled."""
    picked = [true_class]
    for name in [model_answer, *ranked]:
        if name not in picked:
            picked.append(name)
        if len(picked) == 4:
            break
    rng.shuffle(picked)
    return tuple(picked)


def make_round(
    engine: Any, photo: NaturalPhoto, *, eps_levels: int = 4, steps: int = 10, seed: int = 0, max_side: int = 512
) -> NaturalRound:
    """Cloak ``photo`` away from its true class on ``engine`` (a CloakEngine of app.ml.cloak.engine) and build
    the round."""
    pixels = validate_upload(photo.path.read_bytes(), max_side=max_side).pixels
    true_index = engine.class_index(photo.true_class)
    outcome = engine.cloak(pixels, eps=eps_levels / 255, steps=steps, away_from=true_index, seed=seed)
    clean_probs = engine.probabilities(pixels)
    ranked = [p.name for p in engine.top(clean_probs, 12)]
    rng = random.Random(seed)
    choices = four_choices(photo.true_class, outcome.after[0].name, ranked, rng)
    return NaturalRound(
        photo=photo,
        original=outcome.original,
        shown=outcome.cloaked,
        difference=outcome.difference,
        choices=choices,
        true_class=photo.true_class,
        model_answer=outcome.after[0].name,
        model_clean_answer=ranked[0],
        eps_levels=eps_levels,
    )
