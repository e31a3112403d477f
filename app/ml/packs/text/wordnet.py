"""WordNet 3.0 read straight from Debian's ``wordnet-base`` files (``/usr/share/wordnet``), nothing downloaded.

Why not NLTK's ``WordNetCorpusReader``: pointed at Debian's folder it fails three ways (NLTK 3.10): the folder
is outside NLTK's allowed data roots, the package has no ``lexnames`` file, and the constructor maps sense keys
against a *downloaded* ``wordnet`` corpus (``map_wn``). A two-method subclass gets past the last two, but it then
takes 14 s to load and 26 s to list the noun synsets on this host, where the pack needs under two seconds. The
file formats are small and documented (wndb(5WN), morphy(7WN)), so this module reads them itself: a synset is
one line of ``data.<pos>`` whose byte offset is its id, and ``index.<pos>`` maps each lemma to its synsets in
order of sense frequency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from app.ml.packs.base import DataPackMissing

WORDNET_DIR = Path("/usr/share/wordnet")
DEBIAN_PACKAGE = "wordnet-base"
LICENCE = "WordNet 3.0 licence (Princeton University, BSD-like; see /usr/share/doc/wordnet-base/copyright)"

Pos = Literal["n", "v", "a", "r"]
POS_FILES: dict[str, str] = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}

# The lexicographer file number -> name table of WordNet 3.0, as listed in lexnames(5WN). Debian's package
# ships no ``lexnames`` file; the table is fixed for the 3.0 database, so it is written here.
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive "
    "noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity noun.relation "
    "noun.shape noun.state noun.substance noun.time verb.body verb.change verb.cognition verb.communication "
    "verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion verb.perception "
    "verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()

# Detachment rules of morphy(7WN): (suffix, ending) pairs tried in order, for each part of speech.
DETACHMENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "n": (
        ("s", ""),
        ("ses", "s"),
        ("xes", "x"),
        ("zes", "z"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("men", "man"),
        ("ies", "y"),
    ),
    "v": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}
# Adjective words in data.adj may carry a syntactic marker: (a), (p) or (ip).
ADJECTIVE_MARKER = re.compile(r"\((?:a|p|ip)\)$")


@dataclass(frozen=True)
class Synset:
    """One synset: its id (``<offset>-<pos>``), lexicographer file, words (spaces, not underscores), gloss."""

    offset: int
    pos: str
    lexname: str
    words: tuple[str, ...]
    derivations: tuple[tuple[int, str, int], ...]  # (offset, pos, target word number) of '+' pointers
    gloss: str
    antonyms: tuple[tuple[int, str, int], ...] = ()  # the same for '!' pointers

    @property
    def id(self) -> str:
        return f"{self.offset:08d}-{self.pos}"


@dataclass(frozen=True)
class IndexEntry:
    offsets: tuple[int, ...]
    tagged_senses: int  # how often the lemma was sense-tagged in the SemCor corpus with this part of speech


def require_wordnet(folder: Path = WORDNET_DIR) -> Path:
    if not (folder / "data.noun").is_file():
        raise DataPackMissing(
            f"WordNet 3.0 is not in {folder}: install the Debian package `{DEBIAN_PACKAGE}` "
            f"(apt-get install {DEBIAN_PACKAGE}); nothing is downloaded at run time"
        )
    return folder


def parse_data_line(line: str, pos: str) -> Synset:
    """One line of ``data.<pos>`` (wndb(5WN)): offset lex_filenum ss_type w_cnt [word lex_id]... p_cnt [ptr]..."""
    head, _, gloss = line.partition(" | ")
    fields = head.split()
    offset, lexnum, word_count = int(fields[0]), int(fields[1]), int(fields[3], 16)
    words = tuple(ADJECTIVE_MARKER.sub("", fields[4 + 2 * i]).replace("_", " ") for i in range(word_count))
    at = 4 + 2 * word_count
    pointer_count = int(fields[at])
    pointers: dict[str, list[tuple[int, str, int]]] = {"+": [], "!": []}
    for k in range(pointer_count):
        symbol, target, target_pos, source_target = fields[at + 1 + 4 * k : at + 5 + 4 * k]
        if symbol in pointers:
            pointers[symbol].append((int(target), "a" if target_pos == "s" else target_pos, int(source_target[2:], 16)))
    return Synset(
        offset, pos, LEXNAMES[lexnum], words, tuple(pointers["+"]), gloss.strip(), antonyms=tuple(pointers["!"])
    )


class WordNet:
    """Synsets by offset (read by seeking in the data file), the lemma index, and morphy's base forms."""

    def __init__(self, folder: Path = WORDNET_DIR) -> None:
        self.folder = require_wordnet(folder)
        self._data = {pos: (self.folder / f"data.{name}").open("rb") for pos, name in POS_FILES.items()}
        self._index: dict[str, dict[str, IndexEntry]] = {}
        self._exceptions: dict[str, dict[str, tuple[str, ...]]] = {}
        self._synsets: dict[tuple[int, str], Synset] = {}
        self._base_forms: dict[tuple[str, str], tuple[str, ...]] = {}

    def all_synsets(self, pos: str) -> list[Synset]:
        """Every synset of one part of speech, in file order (licence header lines skipped)."""
        out = []
        with (self.folder / f"data.{POS_FILES[pos]}").open(encoding="utf-8") as fh:
            for line in fh:
                if not line.startswith("  "):
                    synset = parse_data_line(line, pos)
                    self._synsets[(synset.offset, pos)] = synset
                    out.append(synset)
        return out

    def synset(self, offset: int, pos: str) -> Synset:
        key = (offset, pos)
        if key not in self._synsets:
            fh = self._data[pos]
            fh.seek(offset)
            self._synsets[key] = parse_data_line(fh.readline().decode("utf-8"), pos)
        return self._synsets[key]

    def index(self, pos: str) -> dict[str, IndexEntry]:
        """``index.<pos>``: lemma (lower case, spaces) -> its synset offsets and tagged-sense count."""
        if pos not in self._index:
            entries = {}
            with (self.folder / f"index.{POS_FILES[pos]}").open(encoding="utf-8") as fh:
                for line in fh:
                    if line.startswith("  "):
                        continue
                    fields = line.split()
                    pointer_count = int(fields[3])
                    tagged = int(fields[5 + pointer_count])
                    offsets = tuple(int(f) for f in fields[6 + pointer_count :])
                    entries[fields[0].replace("_", " ")] = IndexEntry(offsets, tagged)
            self._index[pos] = entries
        return self._index[pos]

    def exceptions(self, pos: str) -> dict[str, tuple[str, ...]]:
        if pos not in self._exceptions:
            table = {}
            with (self.folder / f"{POS_FILES[pos]}.exc").open(encoding="utf-8") as fh:
                for line in fh:
                    inflected, *bases = line.split()
                    table[inflected] = tuple(bases)
            self._exceptions[pos] = table
        return self._exceptions[pos]

    def base_forms(self, word: str, pos: str) -> tuple[str, ...]:
        """morphy(7WN): the word itself if it is a lemma, its exception-list bases, then detached suffixes."""
        word = word.lower()
        key = (word, pos)
        if key not in self._base_forms:
            self._base_forms[key] = self.find_base_forms(word, pos)
        return self._base_forms[key]

    def find_base_forms(self, word: str, pos: str) -> tuple[str, ...]:
        index = self.index(pos)
        found = [word] if word in index else []
        found += [b for b in self.exceptions(pos).get(word, ()) if b in index and b not in found]
        for suffix, ending in DETACHMENTS[pos]:
            if word.endswith(suffix):
                base = word[: len(word) - len(suffix)] + ending
                if base and base in index and base not in found:
                    found.append(base)
        return tuple(found)

    def synsets(self, lemma: str, pos: str) -> list[Synset]:
        entry = self.index(pos).get(lemma.lower())
        return [self.synset(offset, pos) for offset in entry.offsets] if entry else []

    def derived_words(self, synset: Synset) -> list[str]:
        """The words that synset's '+' (derivationally related form) pointers lead to, in any part of speech."""
        return self.pointed_words(synset.derivations)

    def antonym_words(self, synset: Synset) -> list[str]:
        return self.pointed_words(synset.antonyms)

    def pointed_words(self, pointers: tuple[tuple[int, str, int], ...]) -> list[str]:
        out = []
        for offset, pos, word_number in pointers:
            target = self.synset(offset, pos)
            out.append(target.words[word_number - 1] if word_number else target.words[0])
        return out


@lru_cache(maxsize=2)
def open_wordnet(folder: Path = WORDNET_DIR) -> WordNet:
    """One reader per folder and process: the index files are read once and shared by every attack."""
    return WordNet(folder)
