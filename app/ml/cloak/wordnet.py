"""ImageNet's 1000 classes as WordNet 3.0 noun synsets, and the families (hypernyms) they belong to. No torch.

ImageNet class ids are WordNet noun offsets (wnid ``n02123045`` is line offset 02123045 of ``data.noun``);
``imagenet_wnids.txt`` beside this module lists them in the models' output order (its header says where the list
comes from). WordNet itself is read from Debian's ``wordnet-base`` (``/usr/share/wordnet``): only the words and
the hypernym pointers (``@`` and ``@i``) of the synsets on the way up from the 1000 classes.

- :meth:`ImagenetTree.family` is the smallest hypernym whose subtree holds every given class (for a cat's top-5:
  ``cat``, or ``feline``), with the ImageNet classes it holds: the cloak's default goal is to leave all of them.
  An answer from an unrelated branch (a cat photo's fifth guess "carton") would widen the family to "whole", a
  goal that means nothing, so an answer that makes the family hold more than a quarter of the classes is left
  out and reported;
- :meth:`ImagenetTree.path` is the WordNet path between two classes, up to their nearest common hypernym and
  down again (``tabby -> domestic cat -> cat -> feline -> carnivore -> placental -> ... -> dog -> ...``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from app.ml.packs.text.wordnet import WORDNET_DIR, require_wordnet

WNID_FILE = Path(__file__).with_name("imagenet_wnids.txt")
HYPERNYM_POINTERS = ("@", "@i")
# A family that holds more than this share of the 1000 classes says nothing ("physical entity").
MAX_FAMILY_SHARE = 0.25


@dataclass(frozen=True)
class Synset:
    offset: int
    words: tuple[str, ...]
    hypernyms: tuple[int, ...]

    @property
    def wnid(self) -> str:
        return f"n{self.offset:08d}"

    @property
    def name(self) -> str:
        return self.words[0]


@dataclass(frozen=True)
class Family:
    """The smallest hypernym holding the classes ``of`` (class indices), and every ImageNet class under it."""

    synset: Synset
    members: frozenset[int]
    of: tuple[int, ...]
    dropped: tuple[int, ...] = ()  # top-5 answers left out because they made the family too wide

    @property
    def name(self) -> str:
        return self.synset.name


def read_wnids(path: Path = WNID_FILE) -> tuple[str, ...]:
    wnids = tuple(line.strip() for line in path.read_text().splitlines() if line.strip() and line[0] != "#")
    if len(wnids) != 1000 or not all(w[0] == "n" and len(w) == 9 and w[1:].isdigit() for w in wnids):
        raise ValueError(f"{path} must list 1000 wnids like n01440764, found {len(wnids)} lines")
    return wnids


def parse_noun_line(line: str) -> Synset:
    """One ``data.noun`` line (wndb(5WN)): offset lex_filenum ss_type w_cnt [word lex_id]... p_cnt [ptr]..."""
    fields = line.partition(" | ")[0].split()
    count = int(fields[3], 16)
    words = tuple(fields[4 + 2 * i].replace("_", " ") for i in range(count))
    at = 4 + 2 * count
    hypernyms = tuple(
        int(fields[at + 2 + 4 * k])
        for k in range(int(fields[at]))
        if fields[at + 1 + 4 * k] in HYPERNYM_POINTERS and fields[at + 3 + 4 * k] == "n"
    )
    return Synset(int(fields[0]), words, hypernyms)


class ImagenetTree:
    """The 1000 classes, their synsets and every hypernym above them."""

    def __init__(self, folder: Path = WORDNET_DIR, wnid_file: Path = WNID_FILE) -> None:
        self.folder = require_wordnet(folder)
        self.wnids = read_wnids(wnid_file)
        self.synsets: dict[int, Synset] = {}
        with (self.folder / "data.noun").open("rb") as fh:
            pending = [int(w[1:]) for w in self.wnids]
            while pending:
                offset = pending.pop()
                if offset in self.synsets:
                    continue
                fh.seek(offset)
                synset = parse_noun_line(fh.readline().decode("utf-8"))
                if synset.offset != offset:
                    raise ValueError(f"no noun synset at offset {offset:08d} of {self.folder / 'data.noun'}")
                self.synsets[offset] = synset
                pending.extend(h for h in synset.hypernyms if h not in self.synsets)
        self.class_offsets = tuple(int(w[1:]) for w in self.wnids)

    def synset_of(self, index: int) -> Synset:
        return self.synsets[self.class_offsets[index]]

    def up_distances(self, offset: int) -> dict[int, tuple[int, int | None]]:
        """Every synset above ``offset`` (itself included): (hops up, the synset below it on a shortest way)."""
        seen: dict[int, tuple[int, int | None]] = {offset: (0, None)}
        queue = deque([offset])
        while queue:
            node = queue.popleft()
            for parent in self.synsets[node].hypernyms:
                if parent not in seen:
                    seen[parent] = (seen[node][0] + 1, node)
                    queue.append(parent)
        return seen

    @cached_property
    def members(self) -> dict[int, frozenset[int]]:
        """synset offset -> the ImageNet classes under it (itself included)."""
        found: dict[int, set[int]] = {}
        for index, offset in enumerate(self.class_offsets):
            for above in self.up_distances(offset):
                found.setdefault(above, set()).add(index)
        return {offset: frozenset(classes) for offset, classes in found.items()}

    def smallest_common(self, classes: tuple[int, ...]) -> Synset:
        common = set.intersection(*(set(self.up_distances(self.class_offsets[i])) for i in classes))
        best = min(common, key=lambda o: (len(self.members[o]), o))
        return self.synsets[best]

    def family(self, classes: tuple[int, ...] | list[int]) -> Family:
        """The smallest family holding ``classes`` (most likely first). The first class always stays; each next
        one joins only if the family still holds at most ``MAX_FAMILY_SHARE`` of the classes (else it is dropped,
        as an answer from an unrelated branch)."""
        ordered = [int(c) for c in classes]
        if not ordered:
            raise ValueError("a family needs at least one class")
        limit = MAX_FAMILY_SHARE * len(self.class_offsets)
        kept, dropped = [ordered[0]], []
        for candidate in ordered[1:]:
            if len(self.members[self.smallest_common((*kept, candidate)).offset]) <= limit:
                kept.append(candidate)
            else:
                dropped.append(candidate)
        synset = self.smallest_common(tuple(kept))
        return Family(synset, self.members[synset.offset], tuple(kept), tuple(dropped))

    def path(self, a: int, b: int) -> tuple[Synset, ...]:
        """From class ``a`` up to the nearest hypernym it shares with ``b``, then down to ``b``."""
        up_a = self.up_distances(self.class_offsets[a])
        up_b = self.up_distances(self.class_offsets[b])
        meet = min(set(up_a) & set(up_b), key=lambda o: (up_a[o][0] + up_b[o][0], o))

        def chain(up: dict[int, tuple[int, int | None]]) -> list[Synset]:
            out: list[Synset] = []
            node: int | None = meet
            while node is not None:
                out.append(self.synsets[node])
                node = up[node][1]
            return out  # from the meeting point down to the class

        return tuple(reversed(chain(up_a))) + tuple(chain(up_b)[1:])


@lru_cache(maxsize=1)
def imagenet_tree() -> ImagenetTree:
    return ImagenetTree()
