"""Fixtures for the text tests: the definitions pack, built once per session (about 3 s of one core)."""

from __future__ import annotations

import pytest

from app.ml.packs.text.definitions import TextPack, definitions_pack
from app.ml.packs.text.wordnet import WordNet, open_wordnet


@pytest.fixture(scope="session")
def pack() -> TextPack:
    return definitions_pack()


@pytest.fixture(scope="session")
def wordnet() -> WordNet:
    return open_wordnet()
