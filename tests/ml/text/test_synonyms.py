"""Synonym candidates: same part of speech, no antonyms, no compounds of the word, inflected as the word is."""

from __future__ import annotations

from app.ml.packs.text.wordnet import WordNet
from app.ml.text.synonyms import SynonymSource, inflect_like, match_case, most_frequent_pos


def test_part_of_speech_prefers_the_noun_reading(wordnet: WordNet) -> None:
    assert most_frequent_pos(wordnet, "plants") == ("n", "plant")
    assert most_frequent_pos(wordnet, "small") == ("a", "small")
    assert most_frequent_pos(wordnet, "zzzqx") is None


def test_candidates_skip_antonyms_compounds_and_stopwords(wordnet: WordNet) -> None:
    source = SynonymSource(wordnet=wordnet)
    assert "queen" not in source.options("king")  # antonym of "king" in its first sense
    assert not any("blue" in option for option in source.options("blue"))  # "blueness" is not a synonym
    assert "workses" not in source.options("plants")
    assert "little" in source.options("small")
    assert source.options("the") == [] and source.options("of") == []
    assert source.candidates("Small")[0][0].isupper()


def test_inflection_and_case() -> None:
    assert inflect_like("flowers", "flower", "bloom") == "blooms"
    assert inflect_like("boxes", "box", "case") == "cases"
    assert inflect_like("plants", "plant", "works") is None
    assert inflect_like("ran", "run", "go") is None
    assert match_case("Dog", "hound") == "Hound" and match_case("NATO", "alliance") == "ALLIANCE"
