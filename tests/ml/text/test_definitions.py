"""The definitions pack: read offline from Debian's WordNet, cleaned, balanced, split by synset, reproducible."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.ml.packs.base import DataPackMissing
from app.ml.packs.text.card import CARD_PATH, data_card
from app.ml.packs.text.definitions import (
    BLANK,
    CATEGORIES,
    PER_CATEGORY,
    TextPack,
    clean_definition,
    forbidden_words,
)
from app.ml.packs.text.tokens import join_tokens, tokenize, words
from app.ml.packs.text.wordnet import LEXNAMES, WordNet

CHECKED = 2000  # texts per split checked word by word against their synset's names


def test_lexnames_table_is_wordnet_30s(wordnet: WordNet) -> None:
    assert len(LEXNAMES) == 45 and LEXNAMES[5] == "noun.animal" and LEXNAMES[44] == "adj.ppl"
    dog = wordnet.synsets("dog", "n")[0]
    assert dog.lexname == "noun.animal" and dog.words[:2] == ("dog", "domestic dog")


def test_missing_wordnet_names_the_debian_package(tmp_path: Path) -> None:
    with pytest.raises(DataPackMissing, match="wordnet-base"):
        WordNet(tmp_path)


def test_morphy_base_forms(wordnet: WordNet) -> None:
    assert wordnet.base_forms("dogs", "n") == ("dog",)
    assert "goose" in wordnet.base_forms("geese", "n")
    assert "run" in wordnet.base_forms("running", "v")


def test_tokens_join_back_exactly() -> None:
    text = "a long-tailed ___ (often mounted); 1852-1934"
    assert join_tokens(tokenize(text)) == text
    assert words(text) == ["a", "long", "tailed", "often", "mounted"]


def test_defined_word_never_appears_in_its_definition(pack: TextPack, wordnet: WordNet) -> None:
    basketball = wordnet.synsets("basketball", "n")[0]
    assert "basketball" not in clean_definition(wordnet, basketball).lower()
    by_id = {f"{s.offset:08d}-n": s for s in wordnet.all_synsets("n")}
    for split in (pack.train, pack.test):
        for sid, text in zip(split.synset_ids[:CHECKED], split.texts[:CHECKED], strict=True):
            forbidden = forbidden_words(wordnet, by_id[sid])
            assert not forbidden & {w.lower() for w in words(text)}, (sid, text)
            assert BLANK + " " + BLANK not in text


def test_balanced_and_split_by_synset(pack: TextPack) -> None:
    assert pack.class_names == tuple(name for _, name in CATEGORIES)
    assert len(pack.train) + len(pack.test) == PER_CATEGORY * len(CATEGORIES)
    assert not set(pack.train.synset_ids) & set(pack.test.synset_ids)
    assert len(set(pack.train.synset_ids)) == len(pack.train)
    assert not {t.lower() for t in pack.train.texts} & {t.lower() for t in pack.test.texts}
    for label in range(len(CATEGORIES)):
        assert (pack.test.labels == label).sum() == round(PER_CATEGORY * 0.2)


def test_data_card_matches_the_pack(pack: TextPack) -> None:
    """The committed card was written by another process: equality also shows the build is deterministic."""
    assert CARD_PATH.read_text(encoding="utf-8") == data_card(pack), "run: python -m app.ml.packs.text.card"
