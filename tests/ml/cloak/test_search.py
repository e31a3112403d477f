"""The reverse image search the cloak has to beat: over the gallery of offline photos and their everyday variants,
each engine's threshold finds every variant of a photo and matches no other photo; the differentiable pHash
stand-in is imagehash bit for bit; the default cloak keeps its grey-level budget while it attacks the classifier's
family and both engines; the held-out checks are measured on the treated image."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from app.ml.cloak.heldout import CHECKS, ENGINES
from app.ml.cloak.search import GALLERY_VARIANTS, gallery_photos, load_photo, phash_bits
from tests.imagenet import needs_imagenet, sample

pytestmark = needs_imagenet


@pytest.fixture(scope="module")
def index(engine: Any) -> Any:
    return engine.search_index()


def test_the_gallery_holds_every_offline_photo(index: Any) -> None:
    assert len(index.names) == len(gallery_photos()) >= 8
    assert len(index.entries) == len(index.names) * (1 + len(GALLERY_VARIANTS))
    assert set(index.thresholds) == set(ENGINES)


@pytest.mark.parametrize("engine_name", ENGINES)
def test_every_variant_is_found_and_no_other_photo_matches(index: Any, engine_name: str) -> None:
    table = index.descriptors[engine_name]
    for i, (photo, variant) in enumerate(index.entries):
        match = index.lookup_entry(engine_name, table[i], photo)
        assert match.found and match.distance <= index.thresholds[engine_name], (index.names[photo], variant)
    assert index.variant_distances(engine_name).max() == index.thresholds[engine_name]
    assert index.false_matches(engine_name) == []


def test_the_soft_hash_is_imagehash_bit_for_bit_on_every_gallery_photo() -> None:
    import torch
    from PIL import Image

    from app.ml.cloak.stand_ins import phash_pixels, soft_phash, to_tensor

    photos = gallery_photos()
    assert len(photos) >= 8
    for photo in photos:
        for side in (512, 224):
            pixels = load_photo(photo, side)
            pillow = np.asarray(Image.fromarray(pixels).convert("L").resize((32, 32), Image.Resampling.LANCZOS))
            assert np.array_equal(phash_pixels(pixels), pillow), (photo.name, side)
            soft = soft_phash(to_tensor(pixels, torch.device("cpu"))).numpy() > 0
            assert np.array_equal(soft, phash_bits(pixels)), (photo.name, side)  # 64 of 64 bits


@pytest.mark.parametrize(("size_in", "size_out"), [(451, 32), (224, 32), (33, 32), (16, 32)])
def test_the_resize_weights_are_pillows_own(size_in: int, size_out: int) -> None:
    from app.ml.cloak.stand_ins import lanczos_weights, pillow_lanczos_readback

    ours = lanczos_weights(size_in, size_out)
    assert np.abs(ours - pillow_lanczos_readback(size_in, size_out)).max() < 1e-6  # float32 readback
    assert np.allclose(ours.sum(axis=1), 1.0)


def test_the_soft_hash_has_a_gradient_through_the_roundings() -> None:
    import torch

    from app.ml.cloak.stand_ins import soft_phash, to_tensor

    x = to_tensor(sample("coffee.png", (224, 160)), torch.device("cpu")).requires_grad_(True)
    soft_phash(x).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_the_default_cloak_leaves_the_family_within_its_budget_and_reports_every_check(engine: Any) -> None:
    photo = sample("chelsea.png", (224, 224))
    steps: list[int] = []
    outcome = engine.cloak(photo, eps=4 / 255, steps=10, progress=lambda s, *_: steps.append(s))
    assert steps == list(range(1, 11))
    assert outcome.goal == "family" and outcome.family.name == "cat"
    assert outcome.success and outcome.after[0].index not in outcome.family.members
    assert engine.top(engine.probabilities(outcome.cloaked), 1)[0].index == outcome.after[0].index  # re-measured
    assert outcome.path[0] == outcome.before[0].name and outcome.path[-1] == outcome.after[0].name
    change = np.abs(outcome.cloaked.astype(int) - photo.astype(int))
    assert 0 < change.max() <= 4 and outcome.linf == change.max() / 255
    assert [m.engine for m in outcome.search] == ["phash", "embedding"]
    assert [row.check for row in outcome.survival] == [name for name, _ in CHECKS]
    delivered = outcome.survival[0]
    assert [m.engine for m in delivered.matches] == list(ENGINES)
    assert delivered.goal_met == outcome.success and delivered.top1.index == outcome.after[0].index
    # the embedding distance the table reports is the one measured on the delivered PNG
    reference, seen = engine.measure(photo), engine.measure(outcome.cloaked)
    by_engine = {m.engine: m for m in delivered.matches}
    for name in ENGINES:
        expected = index_distance(engine, name, seen.descriptors[name], reference.descriptors[name])
        assert by_engine[name].distance == pytest.approx(expected, abs=1e-6)


def index_distance(engine: Any, name: str, query: np.ndarray, reference: np.ndarray) -> float:
    return float(engine.search_index().engines[name].distances(query, reference[None, :])[0])


def test_an_untouched_photo_is_found_by_every_engine(engine: Any) -> None:
    """The control: with no change at all, the search finds the original at rank 1, distance 0."""
    photo = sample("coffee.png", (224, 224))
    reference = engine.measure(photo)
    for name in ENGINES:
        match = engine.search_index().lookup(name, reference.descriptors[name], reference.descriptors[name])
        assert match.found and match.rank == 1 and match.distance == pytest.approx(0.0, abs=1e-6)


@pytest.mark.slow
def test_the_search_attack_keeps_the_budget_and_moves_the_embedding_past_its_threshold(engine: Any) -> None:
    photo = sample("coffee.png", (224, 224))
    plain = engine.cloak(photo, eps=2 / 255, steps=6, goal="untargeted", search=False, checks=True)
    searched = engine.cloak(photo, eps=2 / 255, steps=6, goal="untargeted", search=True)
    for outcome in (plain, searched):
        assert np.abs(outcome.cloaked.astype(int) - photo.astype(int)).max() <= 2
    embedding = next(m for m in searched.search if m.engine == "embedding")
    assert embedding.past_threshold and embedding.distance > embedding.threshold


def test_the_hash_decoy_is_another_photo_and_its_bits_to_flip_can_outrank_the_original(index: Any) -> None:
    import torch

    from app.ml.cloak.hash_attack import HashDecoy
    from app.ml.cloak.stand_ins import to_tensor

    for name in ("chelsea", "rocket"):
        photo = next(p for p in gallery_photos() if p.name == name)
        pixels = load_photo(photo, 224)
        decoy = HashDecoy.choose(to_tensor(pixels, torch.device("cpu")), index, index.names.index(name))
        differ = decoy.decoy != decoy.original
        assert decoy.decoy_name != name and np.array_equal(decoy.original, phash_bits(pixels))
        assert differ.sum() > index.thresholds["phash"]
        assert not (decoy.flip & ~differ).any()  # only bits where the decoy differs
        flips = int(decoy.flip.sum())
        assert flips > index.thresholds["phash"] and flips > differ.sum() - flips  # then the decoy is nearer
        # a copy with exactly those bits flipped is past the threshold and nearer the decoy than the original
        copy = decoy.original ^ decoy.flip
        assert decoy.verdict(copy).past_threshold
        assert int((copy != decoy.decoy).sum()) < int((copy != decoy.original).sum())


def test_the_default_cloak_beats_phash_where_the_hinge_reaches_the_decoy(engine: Any) -> None:
    """scikit-image's rocket at 224 px, 4 grey levels, 10 steps: the copy is past pHash's threshold and other
    photos outrank the original (before the decoy hinge, the original stayed the nearest entry on every photo)."""
    photo = load_photo(next(p for p in gallery_photos() if p.name == "rocket"), 224)
    outcome = engine.cloak(photo, eps=4 / 255, steps=10, leave_out="rocket", checks=False)
    phash = next(m for m in outcome.search if m.engine == "phash")
    assert phash.beaten and phash.rank > phash.k and phash.distance > phash.threshold, phash
    assert phash.distance == int((phash_bits(outcome.cloaked) != phash_bits(photo)).sum())
    assert np.abs(outcome.cloaked.astype(int) - photo.astype(int)).max() <= 4
