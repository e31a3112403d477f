"""Text opponents: one interface (texts in, class probabilities out), evaluated by our own code at play time.

Both checkpoints are plain arrays in safetensors, as the image logreg's are: scikit-learn fits them
(:mod:`app.ml.text.train`) but is not needed to play. ``tfidf`` holds the vocabulary, the idf weights and a
logistic regression; ``minilm`` holds a linear head on the 384-d all-MiniLM-L6-v2 sentence embedding.
:class:`QueryCounter` counts every text an attack shows a model, like the image attacks' query counting.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from app.config import get_settings
from app.ml.errors import UnknownName
from app.ml.packs.text.tokens import words
from app.ml.text.encoder import SentenceEncoder, sentence_encoder

TEXT_OPPONENTS: dict[str, str] = {
    "definitions-tfidf": "tfidf",
    "definitions-minilm": "minilm",
}
# The other opponent each one's transfer attack is crafted on.
TRANSFER_SURROGATE = {"definitions-tfidf": "definitions-minilm", "definitions-minilm": "definitions-tfidf"}


class TextOpponent(Protocol):
    name: str
    class_names: tuple[str, ...]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), n_classes) float64 probabilities."""
        ...


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def analyse(text: str) -> list[str]:
    """The TF-IDF features of a text: its words in lower case (the same split every attack counts words by)."""
    return [word.lower() for word in words(text)]


class TfidfLogistic:
    """softmax(W tfidf(x) + b) with sublinear term frequency and l2-normalised rows, as scikit-learn computes
    them (TfidfVectorizer(analyzer=analyse, sublinear_tf=True) then LogisticRegression); out-of-vocabulary
    words are ignored, which is why character edits hurt this opponent."""

    def __init__(
        self,
        name: str,
        class_names: Sequence[str],
        vocabulary: Sequence[str],
        idf: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
    ) -> None:
        self.name = name
        self.class_names = tuple(class_names)
        self.vocabulary = {word: i for i, word in enumerate(vocabulary)}
        self.idf, self.coef, self.intercept = idf, coef, intercept

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        out = np.tile(self.intercept, (len(texts), 1))
        for row, text in enumerate(texts):
            counts: dict[int, int] = {}
            for word in analyse(text):
                column = self.vocabulary.get(word)
                if column is not None:
                    counts[column] = counts.get(column, 0) + 1
            if not counts:
                continue
            columns = np.fromiter(counts, dtype=np.int64)
            weights = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64))) * self.idf[columns]
            weights /= np.sqrt(weights @ weights)
            out[row] += self.coef[:, columns] @ weights
        return out

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return softmax(self.logits(texts))


class MiniLMLinear:
    """softmax(W e(x) + b) on the unit-length all-MiniLM-L6-v2 embedding e(x) (scikit-learn LogisticRegression)."""

    def __init__(
        self,
        name: str,
        class_names: Sequence[str],
        coef: np.ndarray,
        intercept: np.ndarray,
        encoder: SentenceEncoder | None = None,
    ) -> None:
        self.name = name
        self.class_names = tuple(class_names)
        self.coef, self.intercept = coef, intercept
        self.encoder = encoder or sentence_encoder()

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        embeddings = self.encoder.encode(texts).astype(np.float64)
        return softmax(embeddings @ self.coef.T + self.intercept)


class QueryCounter:
    """Wraps an opponent and counts the texts it is asked about (one text = one query)."""

    def __init__(self, opponent: TextOpponent) -> None:
        self.opponent = opponent
        self.name = opponent.name
        self.class_names = opponent.class_names
        self.queries = 0

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        self.queries += len(texts)
        return self.opponent.predict_proba(texts)


def checkpoint_path(models_dir: Path, name: str) -> Path:
    return models_dir / f"{name}.safetensors"


def save_text_opponent(
    path: Path, kind: str, class_names: Sequence[str], arrays: dict[str, np.ndarray], vocabulary: Sequence[str] = ()
) -> None:
    metadata = {"kind": kind, "class_names": json.dumps(list(class_names)), "vocabulary": json.dumps(list(vocabulary))}
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path), metadata=metadata)
    path.chmod(0o644)  # safetensors creates the file private; a checkpoint is meant to be shared


def load_text_opponent(name: str, models_dir: Path | None = None) -> TextOpponent:
    if name not in TEXT_OPPONENTS:
        raise UnknownName("text opponent", name, TEXT_OPPONENTS)
    path = checkpoint_path(models_dir or get_settings().models_dir, name)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: python -m app.ml.text.train --opponent {name}")
    with safe_open(str(path), framework="numpy") as fh:
        metadata = fh.metadata()
    arrays = load_file(str(path))
    class_names = json.loads(metadata["class_names"])
    if metadata["kind"] == "tfidf":
        vocabulary = json.loads(metadata["vocabulary"])
        return TfidfLogistic(name, class_names, vocabulary, arrays["idf"], arrays["coef"], arrays["intercept"])
    return MiniLMLinear(name, class_names, arrays["coef"], arrays["intercept"])
