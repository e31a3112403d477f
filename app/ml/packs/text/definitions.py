"""The definitions pack: WordNet 3.0 noun definitions, each labelled by the kind of thing it defines.

A round shows "a domesticated carnivorous mammal ..." and asks: animal, plant, food, ...? The categories are
WordNet's lexicographer files, eight a person can tell apart. Each text is cleaned so that it never names what it
defines (see :func:`clean_definition`), the categories are balanced (the same number of synsets each, drawn with
the seed), and train/test are split by synset with the seed. The data card is docs/data/definitions.md, written
from this module by ``python -m app.ml.packs.text.card``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from app.ml.packs.text.tokens import is_word, join_tokens, tokenize
from app.ml.packs.text.wordnet import WORDNET_DIR, Synset, WordNet, open_wordnet

PACK_NAME = "definitions"
# (lexicographer file, the name a player sees). Checked counts of WordNet 3.0 noun synsets: animal 7,509,
# plant 8,030, food 2,573, artifact 11,587, person 11,087, location 3,209, body 2,016, substance 2,983.
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("noun.animal", "animal"),
    ("noun.plant", "plant"),
    ("noun.food", "food"),
    ("noun.artifact", "made object"),
    ("noun.person", "person"),
    ("noun.location", "place"),
    ("noun.body", "body part"),
    ("noun.substance", "substance"),
)
PER_CATEGORY = 1600  # the smallest category (body) keeps 1,862 usable definitions after cleaning
TEST_SHARE = 0.2
DEFAULT_SEED = 0
MIN_WORDS, MAX_WORDS = 5, 40
BLANK = "___"
# A word sharing this long a prefix with a name of the synset is a derivation of it (dogs, doglike, basketballs).
PREFIX_MIN = 5
# Never treated as part of a name: function words ("man of the hour" does not blank every "of") and the
# taxonomic ranks that open many names ("genus Banksia" blanks "Banksia", not the "genus" of "important genus of").
NOT_NAMES = frozenset(
    "a an the of in on at to for from by with and or as is be that which who any its it "
    "genus family order class phylum subfamily suborder superfamily tribe species subspecies division type".split()
)


@dataclass(frozen=True)
class TextSplit:
    texts: tuple[str, ...]
    labels: np.ndarray  # int64, index into the pack's class_names
    synset_ids: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class TextPack:
    name: str
    class_names: tuple[str, ...]
    lexnames: tuple[str, ...]
    seed: int
    train: TextSplit
    test: TextSplit
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # per lexname: available, cleaned, kept, ...

    def split(self, name: str) -> TextSplit:
        return {"train": self.train, "test": self.test}[name]


def definition_part(gloss: str) -> str:
    """The gloss up to its first quoted example ("...; \"the dog barked all night\"")."""
    text = re.split(r';\s*"', gloss, maxsplit=1)[0]
    return text.strip().rstrip(";").strip()


def forbidden_words(wordnet: WordNet, synset: Synset) -> set[str]:
    """Lower-case words that would give the answer away: every name of the synset, each content word of a
    multi-word name, and the derivationally related forms WordNet records for them."""
    names = list(synset.words) + wordnet.derived_words(synset)
    out: set[str] = set()
    for name in names:
        for part in re.split(r"[\s\-']+", name.lower()):
            if part and part not in NOT_NAMES:
                out.add(part)
    return out


def names_the_synset(wordnet: WordNet, word: str, forbidden: set[str]) -> bool:
    lower = word.lower()
    if lower in forbidden:
        return True
    if any(len(f) >= PREFIX_MIN and lower.startswith(f) for f in forbidden):
        return True
    return any(base in forbidden for pos in ("n", "v", "a") for base in wordnet.base_forms(lower, pos))


def clean_definition(wordnet: WordNet, synset: Synset) -> str:
    """The definition with every word that names the synset replaced by one blank (runs of them collapse)."""
    forbidden = forbidden_words(wordnet, synset)
    out: list[str] = []
    for token in tokenize(definition_part(synset.gloss)):
        if is_word(token) and names_the_synset(wordnet, token, forbidden):
            if out and out[-1] == BLANK:
                continue
            if len(out) >= 2 and out[-2] == BLANK and out[-1].isspace():
                out.pop()
                continue
            out.append(BLANK)
        else:
            out.append(token)
    return join_tokens(out)


def word_count(text: str) -> int:
    return sum(1 for token in tokenize(text) if is_word(token))


@lru_cache(maxsize=4)
def definitions_pack(seed: int = DEFAULT_SEED, folder: Path = WORDNET_DIR) -> TextPack:
    """Build the pack (about 3 s; cached per seed). Deterministic: the same seed gives the same texts and split."""
    wordnet = open_wordnet(folder)
    wanted = {lexname: i for i, (lexname, _) in enumerate(CATEGORIES)}
    cleaned: dict[str, list[tuple[str, str]]] = {lexname: [] for lexname in wanted}
    counts = {lexname: Counter() for lexname in wanted}
    for synset in wordnet.all_synsets("n"):
        if synset.lexname not in wanted:
            continue
        counts[synset.lexname]["synsets"] += 1
        text = clean_definition(wordnet, synset)
        n = word_count(text)
        if MIN_WORDS <= n <= MAX_WORDS:
            cleaned[synset.lexname].append((synset.id, text))
        else:
            counts[synset.lexname]["dropped_length"] += 1
    # A text shared by several synsets would sit on both sides of the split (or carry two labels): drop them all.
    seen = Counter(text.lower() for rows in cleaned.values() for _, text in rows)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for lexname, rows in cleaned.items():
        unique = sorted((sid, text) for sid, text in rows if seen[text.lower()] == 1)
        counts[lexname]["dropped_duplicate"] = len(rows) - len(unique)
        counts[lexname]["usable"] = len(unique)
        chosen = [unique[i] for i in rng.permutation(len(unique))[:PER_CATEGORY]]
        n_test = round(len(chosen) * TEST_SHARE)
        test += [(sid, text, wanted[lexname]) for sid, text in chosen[:n_test]]
        train += [(sid, text, wanted[lexname]) for sid, text in chosen[n_test:]]
        counts[lexname]["train"], counts[lexname]["test"] = len(chosen) - n_test, n_test
    return TextPack(
        name=PACK_NAME,
        class_names=tuple(name for _, name in CATEGORIES),
        lexnames=tuple(lexname for lexname, _ in CATEGORIES),
        seed=seed,
        train=to_split(train, rng),
        test=to_split(test, rng),
        counts={lexname: dict(c) for lexname, c in counts.items()},
    )


def to_split(rows: list[tuple[str, str, int]], rng: np.random.Generator) -> TextSplit:
    """Rows in a seeded order, so that 'the first n test texts' mixes the categories."""
    rows = [rows[i] for i in rng.permutation(len(rows))]
    return TextSplit(
        texts=tuple(text for _, text, _ in rows),
        labels=np.array([label for _, _, label in rows], dtype=np.int64),
        synset_ids=tuple(sid for sid, _, _ in rows),
    )
