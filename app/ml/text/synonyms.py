"""Synonym candidates for one word, in the TextFooler manner but from WordNet 3.0 (Debian's files).

TextFooler takes a word's nearest neighbours in counter-fitted word vectors, keeps those of the same part of
speech, and later checks the whole sentence with a sentence encoder. Here the candidates are the word's WordNet
synonyms in its part of speech, used only when all-MiniLM-L6-v2 puts the two words close (cosine >= the word
floor).
With no tagger available offline, a word's part of speech is the one in which SemCor tagged it most often (the
tagged-sense counts of index.<pos>, nouns weighted up): a unigram tagger, right for most words of a definition.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from app.ml.packs.text.wordnet import WordNet, open_wordnet
from app.ml.text.encoder import SentenceEncoder, sentence_encoder

WORD_SIMILARITY_FLOOR = 0.5  # TextFooler's delta for counter-fitted vectors; MiniLM puts big/large at 0.81
MAX_CANDIDATES = 12  # TextFooler's N is 50; twelve keep a TF-IDF round well under its 300 ms goal
MIN_LETTERS = 3
# Only the word's most frequent senses (index.<pos> lists them by frequency): rarer senses give swaps that change
# the meaning ("king" -> "queen" through "king, queen, world-beater", "head" -> "headway").
SENSES = 3
STOPWORDS = frozenset(
    "a an the of in on at to for from by with and or but not no as is are was were be been being that which who "
    "whom whose this these those it its their his her they he she we you i any some all each one two used such "
    "than then there into onto out up down over under off very most more often usually especially".split()
)
SIBILANT_ENDINGS = ("s", "x", "z", "ch", "sh")
# Definitions are noun phrases: a word that can be a noun is read as one unless SemCor tags its other part of
# speech this many times more often ("plants" is the noun, not the verb "to plant").
NOUN_WEIGHT = 3


def most_frequent_pos(wordnet: WordNet, word: str) -> tuple[str, str] | None:
    """(part of speech, base form) the word most often has, or None if WordNet does not know it."""
    best: tuple[int, int, str, str] | None = None
    for rank, pos in enumerate(("n", "v", "a", "r")):
        for base in wordnet.base_forms(word, pos):
            entry = wordnet.index(pos)[base]
            score = (entry.tagged_senses * (NOUN_WEIGHT if pos == "n" else 1), -rank)
            if best is None or score > best[:2]:
                best = (*score, pos, base)
    return (best[2], best[3]) if best else None


def inflect_like(original: str, base: str, synonym: str) -> str | None:
    """Give a synonym the original's regular noun plural; None when the original is inflected otherwise."""
    if original == base:
        return synonym
    if original == base + "s" or original == base + "es":
        if synonym.endswith("s"):  # plural-only lemmas ("works"): a second ending would be wrong
            return None
        return synonym + ("es" if synonym.endswith(SIBILANT_ENDINGS) else "s")
    return None


def is_compound_of(lemma: str, base: str) -> bool:
    """ "blueness" for "blue", "axletree" for "axle": a longer word built on the original, not a synonym."""
    return base in lemma or lemma in base


def match_case(original: str, word: str) -> str:
    if original.isupper() and len(original) > 1:
        return word.upper()
    return word[:1].upper() + word[1:] if original[:1].isupper() else word


class SynonymSource:
    def __init__(
        self,
        wordnet: WordNet | None = None,
        encoder: SentenceEncoder | None = None,
        word_floor: float = WORD_SIMILARITY_FLOOR,
        max_candidates: int = MAX_CANDIDATES,
    ) -> None:
        self.wordnet = wordnet or open_wordnet()
        self.encoder = encoder or sentence_encoder()
        self.word_floor = word_floor
        self.max_candidates = max_candidates
        self.cache: dict[str, tuple[str, ...]] = {}

    def candidates(self, word: str) -> tuple[str, ...]:
        """WordNet replacements for ``word`` (single words, same part of speech), most frequent senses first.

        Not yet filtered by word similarity: the attack checks that only for the few candidates it would use
        (:meth:`close_enough`), in the same encoder call as the sentence similarity, which costs a third of
        filtering every candidate of every word up front."""
        lower = word.lower()
        if lower not in self.cache:
            self.cache[lower] = tuple(self.options(lower)[: self.max_candidates])
        return tuple(match_case(word, c) for c in self.cache[lower])

    def close_enough(self, word: str, candidates: list[str]) -> np.ndarray:
        """Which candidates all-MiniLM-L6-v2 puts within the word floor of ``word`` (cosine of the two words)."""
        return self.encoder.similarity(word.lower(), [c.lower() for c in candidates]) >= self.word_floor

    def options(self, lower: str) -> list[str]:
        """Single-word WordNet synonyms from the word's most frequent senses, inflected as the word is."""
        if len(lower) < MIN_LETTERS or lower in STOPWORDS:
            return []
        tagged = most_frequent_pos(self.wordnet, lower)
        if tagged is None:
            return []
        pos, base = tagged
        senses = self.wordnet.synsets(base, pos)
        # An antonym in any sense ("king" -> "queen" through "king, queen, world-beater") flips the meaning.
        antonyms = {w.lower() for synset in senses for w in self.wordnet.antonym_words(synset)}
        lemmas: list[str] = []
        for synset in senses[:SENSES]:
            for lemma in synset.words:
                lemma = lemma.lower()
                if (
                    lemma.isalpha()
                    and lemma.isascii()
                    and lemma not in lemmas
                    and lemma not in antonyms
                    and not is_compound_of(lemma, base)
                ):
                    lemmas.append(lemma)
        return [w for w in (inflect_like(lower, base, lemma) for lemma in lemmas) if w and w != lower]


@lru_cache(maxsize=1)
def synonym_source() -> SynonymSource:
    """One source per process: its cache of candidates is shared by every round."""
    return SynonymSource()
