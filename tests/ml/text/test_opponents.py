"""The committed text checkpoints load with our evaluator and reproduce their cards' figures."""

from __future__ import annotations

import numpy as np
import pytest

from app.ml.errors import UnknownName
from app.ml.opponents.cards import card_path, read_card, sha256_file
from app.ml.packs.text.definitions import TextPack
from app.ml.text.opponents import QueryCounter, TextOpponent, checkpoint_path, load_text_opponent

from .conftest import REPO_MODELS


@pytest.mark.parametrize("fixture", ["tfidf", "minilm"])
def test_checkpoint_matches_its_card(fixture: str, pack: TextPack, request: pytest.FixtureRequest) -> None:
    opponent: TextOpponent = request.getfixturevalue(fixture)
    card = read_card(card_path(REPO_MODELS, opponent.name))
    assert card["checkpoint"]["sha256"] == sha256_file(checkpoint_path(REPO_MODELS, opponent.name))
    assert list(opponent.class_names) == card["data"]["class_names"] == list(pack.class_names)
    n = card["attacks"]["n"]
    probabilities = opponent.predict_proba(pack.test.texts[:n])
    assert probabilities.shape == (n, len(pack.class_names))
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-12)
    accuracy = float((probabilities.argmax(1) == pack.test.labels[:n]).mean())
    assert accuracy == pytest.approx(card["attacks"]["clean_accuracy"], abs=1e-12)
    assert card["clean_accuracy"]["accuracy"] > 0.7


def test_query_counter_counts_texts(tfidf: TextOpponent) -> None:
    counter = QueryCounter(tfidf)
    counter.predict_proba(["a small dog", "a tall tree", "an old man"])
    counter.predict_proba(["salt"])
    assert counter.queries == 4


def test_unknown_words_and_empty_text(tfidf: TextOpponent) -> None:
    probabilities = tfidf.predict_proba(["", "zzzqx"])
    np.testing.assert_allclose(probabilities[0], probabilities[1])


def test_unknown_opponent_names_the_choices() -> None:
    with pytest.raises(UnknownName, match="definitions-tfidf"):
        load_text_opponent("definitions-bert", REPO_MODELS)
