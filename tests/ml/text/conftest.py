"""Fixtures for the text tests: the definitions pack (about 3 s of one core) and the committed checkpoints, each
loaded once per session. MiniLM takes a few seconds to load; the attacks share it for their similarity floor."""

from __future__ import annotations

import pytest

from app.config import PROJECT_ROOT
from app.ml.packs.text.definitions import TextPack, definitions_pack
from app.ml.packs.text.wordnet import WordNet, open_wordnet
from app.ml.text.opponents import TextOpponent, load_text_opponent

REPO_MODELS = PROJECT_ROOT / "models"


@pytest.fixture(scope="session")
def pack() -> TextPack:
    return definitions_pack()


@pytest.fixture(scope="session")
def wordnet() -> WordNet:
    return open_wordnet()


@pytest.fixture(scope="session")
def tfidf() -> TextOpponent:
    return load_text_opponent("definitions-tfidf", REPO_MODELS)


@pytest.fixture(scope="session")
def minilm() -> TextOpponent:
    return load_text_opponent("definitions-minilm", REPO_MODELS)
