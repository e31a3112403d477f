"""Synonym candidates for one word, in the TextFooler manner but from WordNet 3.0 (Debian's files).

TextFooler takes a word's nearest neighbours in counter-fitted word vectors, keeps those of the same part of
speech, and later checks the whole sentence with a sentence encoder. Here the candidates are the word's WordNet
synonyms in its part of speech, kept when all-MiniLM-L6-v2 puts the two words close (cosine >= the word floor).
With no tagger available offline, a word's part of speech is the one in which SemCor tagged it most often (the
tagged-sense counts of index.<pos>): a unigram tagger, right for most words of a definition.
"""

from __future__ import annotations

from functools import lru_cache

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


def most_frequent_pos(wordnet: WordNet, word: str) -> tuple[str, str] | None:
    """(part of speech, base form) the word most often has, or None if WordNet does not know it."""
    best: tuple[int, int, str, str] | None = None
    for rank, pos in enumerate(("n", "v", "a", "r")):
        for base in wordnet.base_forms(word, pos):
            entry = wordnet.index(pos)[base]
            score = (entry.tagged_senses, -rank)
            if best is None or score > best[:2]:
                best = (*score, pos, base)
    return (best[2], best[3]) if best else None


def inflect_like(original: str, base: str, synonym: str) -> str | None:
    """Give a synonym the original's regular noun plural; None when the original is inflected otherwise."""
    if original == base:
        return synonym
    if original == base + "s" or original == base + "es":
        return synonym + ("es" if synonym.endswith(SIBILANT_ENDINGS) else "s")
    return None


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
        """Replacements for ``word`` (single words, same part of speech, close in meaning), best first."""
        lower = word.lower()
        if lower not in self.cache:
            self.cache[lower] = self.find_candidates(lower)
        return tuple(match_case(word, c) for c in self.cache[lower])

    def prefetch(self, words: list[str]) -> None:
        """Find the candidates of all these words with one encoder call (one call per word costs 3x more)."""
        todo = {w: self.options(w) for w in dict.fromkeys(w.lower() for w in words) if w not in self.cache}
        if any(todo.values()):
            self.encoder.encode(list(dict.fromkeys([*todo, *(o for opts in todo.values() for o in opts)])))
        for word, options in todo.items():
            self.cache[word] = self.rank(word, options)

    def find_candidates(self, lower: str) -> tuple[str, ...]:
        return self.rank(lower, self.options(lower))

    def options(self, lower: str) -> list[str]:
        """Single-word WordNet synonyms from the word's most frequent senses, inflected as the word is."""
        if len(lower) < MIN_LETTERS or lower in STOPWORDS:
            return []
        tagged = most_frequent_pos(self.wordnet, lower)
        if tagged is None:
            return []
        pos, base = tagged
        lemmas: list[str] = []
        for synset in self.wordnet.synsets(base, pos)[:SENSES]:
            for lemma in synset.words:
                lemma = lemma.lower()
                if lemma.isalpha() and lemma.isascii() and lemma != base and lemma not in lemmas:
                    lemmas.append(lemma)
        return [w for w in (inflect_like(lower, base, lemma) for lemma in lemmas) if w and w != lower]

    def rank(self, lower: str, options: list[str]) -> tuple[str, ...]:
        if not options:
            return ()
        similarity = self.encoder.similarity(lower, options)
        ranked = sorted(zip(similarity, options, strict=True), key=lambda pair: -pair[0])
        return tuple(w for s, w in ranked if s >= self.word_floor)[: self.max_candidates]


@lru_cache(maxsize=1)
def synonym_source() -> SynonymSource:
    """One source per process: its cache of candidates is shared by every round."""
    return SynonymSource()
