"""Word-level attacks on text opponents: batched, seeded, budget = the share of words that may change.

- ``textfooler`` (Jin et al. 2020): rank words by how much deleting each lowers the true class's probability,
  then, most important first, swap a word for the WordNet synonym that lowers it most, keeping the sentence
  similarity (all-MiniLM-L6-v2 cosine to the original) above a floor; stop when the answer changes.
- ``deepwordbug`` (Gao et al. 2018): the same ranking, then one character edit in the word (swap two adjacent
  letters, drop one, replace one by a neighbouring key, insert one): typos a person reads through.
- ``transfer``: TextFooler crafted on another opponent (the surrogate), shown once to the target.
- ``random_synonyms``: the control condition, the same number of synonym swaps at random words, no queries
  but the final answer.

Every attack takes a batch of texts, their labels and a per-text budget, and returns one
:class:`TextAttackResult` each. Randomness comes from ``numpy.random.default_rng((seed, crc32(text)))``, so a
text's result depends on the seed and the text alone, not on the rest of its batch. Queries count the texts
shown to the target opponent.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from app.ml.packs.text.tokens import is_word, join_tokens, tokenize, word_positions
from app.ml.text.encoder import SentenceEncoder, sentence_encoder
from app.ml.text.opponents import QueryCounter, TextOpponent
from app.ml.text.synonyms import MIN_LETTERS, STOPWORDS, SynonymSource, synonym_source

# Sentence-similarity floors. Synonym swaps keep MiniLM's cosine above 0.9 in most texts; one typo in a short
# definition can drop it to 0.7 (MiniLM's word pieces change), so character edits get a lower floor.
SYNONYM_FLOOR = 0.80
CHARACTER_FLOOR = 0.60
SIMILARITY_TRIES = 4  # candidates, best first, checked against the floors in one encoder batch
QWERTY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


@dataclass(frozen=True)
class TextAttackResult:
    original: str
    text: str
    label: int
    changed: tuple[int, ...]  # indices (among the words) of the words that changed
    n_words: int
    answer: int  # the target opponent's answer on ``text``
    confidence: float  # its probability of that answer
    success: bool  # answer != label
    queries: int  # texts shown to the target opponent
    similarity: float  # MiniLM cosine between original and text
    surrogate_queries: int = 0

    @property
    def share_changed(self) -> float:
        return len(self.changed) / self.n_words if self.n_words else 0.0


def max_changes(n_words: int, budget: float) -> int:
    """Words that may change: never more than the budget's share (a 0.1 budget on 9 words allows none)."""
    return int(np.floor(budget * n_words + 1e-9))


def text_rng(seed: int, text: str) -> np.random.Generator:
    return np.random.default_rng((seed, zlib.crc32(text.encode("utf-8"))))


def budgets_for(budget: float | Sequence[float], n: int) -> list[float]:
    return [float(budget)] * n if np.isscalar(budget) else [float(b) for b in budget]  # type: ignore[arg-type]


def importance_order(model: QueryCounter, tokens: list[str], label: int, p_label: float) -> list[int]:
    """Word indices by how much deleting the word lowers the label's probability (one batched query)."""
    positions = word_positions(tokens)
    deleted = [join_tokens(tokens[:p] + tokens[p + 1 :]) for p in positions]
    drop = p_label - model.predict_proba(deleted)[:, label]
    return [int(i) for i in np.argsort(-drop, kind="stable")]


def finish(
    model: QueryCounter,
    encoder: SentenceEncoder,
    original: str,
    tokens: list[str],
    label: int,
    changed: list[int],
    n_words: int,
    probabilities: np.ndarray | None = None,
    surrogate_queries: int = 0,
) -> TextAttackResult:
    text = join_tokens(tokens)
    if probabilities is None:
        probabilities = model.predict_proba([text])[0]
    answer = int(np.argmax(probabilities))
    similarity = 1.0 if text == original else float(encoder.similarity(original, [text])[0])
    return TextAttackResult(
        original,
        text,
        label,
        tuple(sorted(changed)),
        n_words,
        answer,
        float(probabilities[answer]),
        answer != label,
        model.queries,
        similarity,
        surrogate_queries,
    )


Proposer = Callable[[str, np.random.Generator], list[str]]


def greedy_word_attack(
    opponent: TextOpponent,
    text: str,
    label: int,
    budget: float,
    floor: float,
    propose: Proposer,
    rng: np.random.Generator,
    encoder: SentenceEncoder,
    word_floor: float | None = None,
) -> TextAttackResult:
    """The loop TextFooler and DeepWordBug share; ``propose`` gives the replacements tried for one word. With a
    ``word_floor``, a replacement must also stay that close (MiniLM cosine) to the word it replaces."""
    model = QueryCounter(opponent)
    tokens = tokenize(text)
    positions = word_positions(tokens)
    probabilities = model.predict_proba([text])[0]
    limit = max_changes(len(positions), budget)
    if int(np.argmax(probabilities)) != label or limit == 0:
        return finish(model, encoder, text, tokens, label, [], len(positions), probabilities)
    changed: list[int] = []
    for index in importance_order(model, tokens, label, float(probabilities[label])):
        if len(changed) >= limit:
            break
        position = positions[index]
        replacements = propose(tokens[position], rng)
        if not replacements:
            continue
        trials = [join_tokens(tokens[:position] + [r] + tokens[position + 1 :]) for r in replacements]
        trial_probabilities = model.predict_proba(trials)
        p_label = trial_probabilities[:, label]
        fooled = trial_probabilities.argmax(1) != label
        # The answer changing beats a lower probability (TextFooler's order); ties keep the proposer's order.
        order = np.lexsort((np.arange(len(trials)), p_label, ~fooled))[:SIMILARITY_TRIES]
        order = [int(k) for k in order if p_label[k] < probabilities[label]]
        if not order:
            continue
        word = tokens[position].lower()
        check_words = [word, *(replacements[k].lower() for k in order)] if word_floor is not None else []
        vectors = encoder.encode([text, *(trials[k] for k in order), *check_words])
        similarity = vectors[1 : 1 + len(order)] @ vectors[0]
        word_similarity = vectors[2 + len(order) :] @ vectors[1 + len(order)] if check_words else np.ones(len(order))
        passing = [
            k
            for k, s, w in zip(order, similarity, word_similarity, strict=True)
            if s >= floor and (word_floor is None or w >= word_floor)
        ]
        if not passing:
            continue
        best = passing[0]
        tokens[position] = replacements[best]
        changed.append(index)
        probabilities = trial_probabilities[best]
        if fooled[best]:
            break
    return finish(model, encoder, text, tokens, label, changed, len(positions), probabilities)


def run_batch(
    opponent: TextOpponent,
    texts: Sequence[str],
    labels: Sequence[int],
    budget: float | Sequence[float],
    seed: int,
    one: Callable[[str, int, float, np.random.Generator], TextAttackResult],
) -> list[TextAttackResult]:
    return [
        one(text, int(label), b, text_rng(seed, text))
        for text, label, b in zip(texts, labels, budgets_for(budget, len(texts)), strict=True)
    ]


def textfooler(
    opponent: TextOpponent,
    texts: Sequence[str],
    labels: Sequence[int],
    budget: float | Sequence[float],
    seed: int = 0,
    similarity_floor: float = SYNONYM_FLOOR,
    synonyms: SynonymSource | None = None,
) -> list[TextAttackResult]:
    source = synonyms or synonym_source()

    def propose(word: str, rng: np.random.Generator) -> list[str]:
        return list(source.candidates(word))

    def one(text: str, label: int, b: float, rng: np.random.Generator) -> TextAttackResult:
        return greedy_word_attack(
            opponent, text, label, b, similarity_floor, propose, rng, source.encoder, source.word_floor
        )

    return run_batch(opponent, texts, labels, budget, seed, one)


def neighbour_keys(letter: str) -> str:
    for row_index, row in enumerate(QWERTY_ROWS):
        column = row.find(letter.lower())
        if column >= 0:
            near = [row[c] for c in (column - 1, column + 1) if 0 <= c < len(row)]
            for other in (row_index - 1, row_index + 1):
                if 0 <= other < len(QWERTY_ROWS):
                    near += [QWERTY_ROWS[other][c] for c in (column - 1, column) if 0 <= c < len(QWERTY_ROWS[other])]
            return "".join(near)
    return ""


def character_edits(word: str, rng: np.random.Generator) -> list[str]:
    """One edit of each kind at a seeded position inside the word (first and last letters kept: readable)."""
    if len(word) < MIN_LETTERS + 1 or word.lower() in STOPWORDS:
        return []
    inner = range(1, len(word) - 1)
    edits: list[str] = []
    i = int(rng.choice(inner[:-1])) if len(inner) > 1 else 1
    if word[i] != word[i + 1]:
        edits.append(word[:i] + word[i + 1] + word[i] + word[i + 2 :])  # swap
    i = int(rng.choice(inner))
    edits.append(word[:i] + word[i + 1 :])  # drop
    i = int(rng.choice(inner))
    keys = neighbour_keys(word[i])
    if keys:
        key = str(rng.choice(list(keys)))
        edits.append(word[:i] + (key.upper() if word[i].isupper() else key) + word[i + 1 :])  # nearby key
    i = int(rng.choice(inner))
    edits.append(word[:i] + str(rng.choice(list("abcdefghijklmnopqrstuvwxyz"))) + word[i:])  # insert
    return [e for e in dict.fromkeys(edits) if e != word and is_word(e) and e.isalpha()]


def deepwordbug(
    opponent: TextOpponent,
    texts: Sequence[str],
    labels: Sequence[int],
    budget: float | Sequence[float],
    seed: int = 0,
    similarity_floor: float = CHARACTER_FLOOR,
    encoder: SentenceEncoder | None = None,
) -> list[TextAttackResult]:
    enc = encoder or sentence_encoder()
    return run_batch(
        opponent,
        texts,
        labels,
        budget,
        seed,
        lambda t, y, b, rng: greedy_word_attack(opponent, t, y, b, similarity_floor, character_edits, rng, enc),
    )


def transfer(
    opponent: TextOpponent,
    surrogate: TextOpponent,
    texts: Sequence[str],
    labels: Sequence[int],
    budget: float | Sequence[float],
    seed: int = 0,
    similarity_floor: float = SYNONYM_FLOOR,
    synonyms: SynonymSource | None = None,
) -> list[TextAttackResult]:
    """TextFooler on the surrogate; the target sees each crafted text once (one query)."""
    source = synonyms or synonym_source()
    crafted = textfooler(surrogate, texts, labels, budget, seed, similarity_floor, source)
    model = QueryCounter(opponent)
    probabilities = model.predict_proba([c.text for c in crafted])
    out = []
    for c, p in zip(crafted, probabilities, strict=True):
        answer = int(np.argmax(p))
        out.append(
            TextAttackResult(
                c.original,
                c.text,
                c.label,
                c.changed,
                c.n_words,
                answer,
                float(p[answer]),
                answer != c.label,
                1,
                c.similarity,
                c.queries,
            )
        )
    return out


def random_synonyms(
    opponent: TextOpponent,
    texts: Sequence[str],
    labels: Sequence[int],
    counts: Sequence[int],
    seed: int = 0,
    similarity_floor: float = SYNONYM_FLOOR,
    synonyms: SynonymSource | None = None,
) -> list[TextAttackResult]:
    """Control: ``counts[i]`` words of text ``i`` (those with a synonym, drawn at random) swapped for a random
    synonym, keeping the similarity floor; the model is asked only for its answer."""
    source = synonyms or synonym_source()
    out = []
    for text, label, count in zip(texts, labels, counts, strict=True):
        rng = text_rng(seed, text)
        model = QueryCounter(opponent)
        tokens = tokenize(text)
        positions = word_positions(tokens)
        changed: list[int] = []
        for index in rng.permutation(len(positions)):
            if len(changed) >= count:
                break
            word = tokens[positions[index]]
            options = list(source.candidates(word))
            if options:
                options = [o for o, ok in zip(options, source.close_enough(word, options), strict=True) if ok]
            if not options:
                continue
            trial = list(tokens)
            trial[positions[index]] = str(rng.choice(list(options)))
            if source.encoder.similarity(text, [join_tokens(trial)])[0] >= similarity_floor:
                tokens, changed = trial, [*changed, int(index)]
        out.append(finish(model, source.encoder, text, tokens, int(label), changed, len(positions)))
    return out
