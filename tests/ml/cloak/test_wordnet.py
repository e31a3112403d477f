"""ImageNet's classes in WordNet 3.0 (Debian's wordnet-base): every class is a noun synset whose words include its
name, and the families and paths the cloak reports are WordNet's."""

from __future__ import annotations

import re

import pytest

from app.ml.cloak.wordnet import MAX_FAMILY_SHARE, WNID_FILE, ImagenetTree, imagenet_tree, read_wnids
from app.ml.opponents.imagenet import class_names
from app.ml.packs.text.wordnet import WORDNET_DIR

pytestmark = pytest.mark.skipif(
    not (WORDNET_DIR / "data.noun").is_file(), reason="WordNet 3.0 is missing: apt-get install wordnet-base"
)
# torchvision names the two classes that share a word in WordNet after both meanings
RENAMED = {"crane bird": "crane", "maillot tank suit": "tank suit"}


@pytest.fixture(scope="module")
def tree() -> ImagenetTree:
    return imagenet_tree()


def index(name: str) -> int:
    return class_names().index(name)


def test_every_imagenet_class_is_a_wordnet_noun_synset_named_like_the_class(tree: ImagenetTree) -> None:
    names = class_names()
    assert len(tree.wnids) == len(set(tree.wnids)) == len(names) == 1000
    unmatched = []
    for i, name in enumerate(names):
        synset = tree.synset_of(i)
        assert synset.wnid == tree.wnids[i]
        words = {re.sub(r"\(.*\)$", "", w).casefold() for w in synset.words}
        if RENAMED.get(name, name).casefold() not in words:
            unmatched.append((i, name, synset.words))
    assert unmatched == []
    # every class reaches WordNet's root noun "entity" through its hypernyms
    entity = next(s for s in tree.synsets.values() if s.name == "entity")
    assert all(i in tree.members[entity.offset] for i in range(1000))


def test_the_wnid_file_is_in_class_order() -> None:
    wnids = read_wnids(WNID_FILE)
    assert wnids[0] == "n01440764" and wnids[-1] == "n15075141"  # tench ... toilet tissue
    assert wnids == tuple(sorted(wnids))  # ILSVRC orders its classes by wnid


def test_the_cats_family_is_every_cat_and_nothing_else(tree: ImagenetTree) -> None:
    top5 = [index(n) for n in ("Egyptian cat", "tabby", "tiger cat", "Persian cat", "lynx")]
    family = tree.family(top5)
    assert family.name == "cat" and family.dropped == ()
    members = {class_names()[i] for i in family.members}
    assert {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat", "lynx"} <= members
    assert not members & {"tiger", "jaguar", "lion", "tiger shark", "toaster"}
    feline = tree.family([index("tabby"), index("tiger")])
    assert feline.name == "feline" and {index("lion"), index("Egyptian cat")} <= feline.members


def test_an_unrelated_answer_does_not_widen_the_family_to_everything(tree: ImagenetTree) -> None:
    family = tree.family([index("tabby"), index("tiger cat"), index("carton")])
    assert family.dropped == (index("carton"),) and family.of == (index("tabby"), index("tiger cat"))
    assert len(family.members) <= MAX_FAMILY_SHARE * 1000


def test_the_path_goes_up_to_the_nearest_common_hypernym_and_down(tree: ImagenetTree) -> None:
    path = [s.name for s in tree.path(index("tabby"), index("tiger"))]
    assert path == ["tabby", "domestic cat", "cat", "feline", "big cat", "tiger"]
    assert [s.name for s in tree.path(index("tabby"), index("tabby"))] == ["tabby"]
