"""Train a text opponent on the definitions pack and write its checkpoint and card.

    python -m app.ml.text.train --opponent definitions-tfidf --seed 0
    python -m app.ml.text.train --opponent definitions-minilm --seed 0

scikit-learn fits the model; its arrays go to models/<name>.safetensors and our evaluator
(:mod:`app.ml.text.opponents`) is compared with scikit-learn's predict_proba on test texts before anything is
written: a mismatch aborts, so a card never describes a model the game does not run. Accuracy under attack is
added to the card afterwards by ``python -m app.ml.text.measure`` (it needs both opponents, for transfer).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from app.config import get_settings
from app.ml.opponents.cards import sha256_file
from app.ml.packs.text.definitions import DEFAULT_SEED, TextPack, definitions_pack
from app.ml.text import cards
from app.ml.text.encoder import ENCODER_NAME, ENCODER_PACKAGE, sentence_encoder
from app.ml.text.opponents import (
    TEXT_OPPONENTS,
    analyse,
    checkpoint_path,
    load_text_opponent,
    save_text_opponent,
)

EQUIVALENCE_N = 500
EQUIVALENCE_TOL = 1e-9  # float64 throughout; MiniLM's float32 embeddings are the same array for both sides
TFIDF_PARAMS: dict[str, Any] = {"min_df": 2, "sublinear_tf": True, "norm": "l2"}
LOGISTIC_PARAMS: dict[str, Any] = {"C": 10.0, "max_iter": 2000, "tol": 1e-6}


def fit_tfidf(pack: TextPack, seed: int) -> tuple[dict[str, np.ndarray], list[str], Any, Any]:
    vectorizer = TfidfVectorizer(analyzer=analyse, **TFIDF_PARAMS)
    features = vectorizer.fit_transform(pack.train.texts)
    estimator = LogisticRegression(**LOGISTIC_PARAMS, random_state=seed).fit(features, pack.train.labels)
    vocabulary = [str(word) for word in vectorizer.get_feature_names_out()]
    arrays = {"idf": vectorizer.idf_.astype(np.float64), "coef": estimator.coef_, "intercept": estimator.intercept_}
    return arrays, vocabulary, vectorizer, estimator


def fit_minilm(pack: TextPack, seed: int) -> tuple[dict[str, np.ndarray], Any]:
    embeddings = sentence_encoder().encode(pack.train.texts).astype(np.float64)
    estimator = LogisticRegression(**LOGISTIC_PARAMS, random_state=seed).fit(embeddings, pack.train.labels)
    return {"coef": estimator.coef_, "intercept": estimator.intercept_}, estimator


def sklearn_proba(kind: str, texts: tuple[str, ...], vectorizer: Any, estimator: Any) -> np.ndarray:
    if kind == "tfidf":
        return estimator.predict_proba(vectorizer.transform(texts))
    return estimator.predict_proba(sentence_encoder().encode(texts).astype(np.float64))


def predict(opponent: Any, texts: tuple[str, ...], batch: int = 256) -> np.ndarray:
    return np.concatenate([opponent.predict_proba(texts[i : i + batch]) for i in range(0, len(texts), batch)])


def train(name: str, seed: int, models_dir: Path) -> dict[str, Any]:
    kind = TEXT_OPPONENTS[name]
    torch.manual_seed(seed)
    pack = definitions_pack(DEFAULT_SEED)
    started = time.perf_counter()
    vectorizer, vocabulary = None, []
    if kind == "tfidf":
        arrays, vocabulary, vectorizer, estimator = fit_tfidf(pack, seed)
    else:
        arrays, estimator = fit_minilm(pack, seed)
    wall = time.perf_counter() - started
    models_dir.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(models_dir, name)
    tmp = path.with_name(f".{path.name}.tmp")
    save_text_opponent(tmp, kind, pack.class_names, arrays, vocabulary)
    tmp.replace(path)
    opponent = load_text_opponent(name, models_dir)
    sample = pack.test.texts[:EQUIVALENCE_N]
    expected, got = sklearn_proba(kind, sample, vectorizer, estimator), predict(opponent, sample)
    diff = float(np.abs(expected - got).max())
    if diff > EQUIVALENCE_TOL:
        path.unlink()
        raise SystemExit(f"our evaluator differs from scikit-learn by {diff:.2e} (> {EQUIVALENCE_TOL}); nothing kept")
    probabilities = predict(opponent, pack.test.texts)
    clean = float((probabilities.argmax(1) == pack.test.labels).mean())
    card = cards.new_card(name, kind, pack)
    card["architecture"] = architecture(kind, arrays, vocabulary)
    card["training"] = {
        "command": f"python -m app.ml.text.train --opponent {name} --seed {seed}",
        "seed": seed,
        "library": f"scikit-learn {sklearn.__version__}",
        "hyperparameters": {**(TFIDF_PARAMS if kind == "tfidf" else {}), **LOGISTIC_PARAMS, "solver": "lbfgs"},
        "wall_time_s": round(wall, 1),
        "threads": torch.get_num_threads(),
        "machine": cards.machine(),
        "created": datetime.now(UTC).date().isoformat(),
    }
    card["equivalence"] = {"n": len(sample), "max_abs_diff": diff, "tolerance": EQUIVALENCE_TOL}
    card["clean_accuracy"] = {"n": len(pack.test), "accuracy": clean}
    card["checkpoint"] = {"file": path.name, "sha256": sha256_file(path)}
    cards.write_card(card, models_dir)
    return card


def architecture(kind: str, arrays: dict[str, np.ndarray], vocabulary: list[str]) -> dict[str, Any]:
    n_classes, n_features = arrays["coef"].shape
    if kind == "tfidf":
        return {
            "model": f"TF-IDF over {len(vocabulary):,} lower-case words (min_df 2, sublinear tf, l2 rows), then "
            f"multinomial logistic regression W: {n_classes}x{n_features}",
            "parameters": int(arrays["coef"].size + arrays["intercept"].size + arrays["idf"].size),
            "evaluator": "app.ml.text.opponents.TfidfLogistic",
        }
    return {
        "model": f"{ENCODER_NAME} (PyPI `{ENCODER_PACKAGE}`, frozen, unit-length mean-pooled embedding) then a "
        f"linear head W: {n_classes}x{n_features} (multinomial logistic regression)",
        "parameters": int(arrays["coef"].size + arrays["intercept"].size),
        "encoder_parameters": sum(p.numel() for p in sentence_encoder().model.parameters()),
        "evaluator": "app.ml.text.opponents.MiniLMLinear",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train a text opponent on the definitions pack.")
    parser.add_argument("--opponent", choices=sorted(TEXT_OPPONENTS), required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    card = train(args.opponent, args.seed, args.models_dir or get_settings().models_dir)
    print(f"{args.opponent}: clean accuracy {card['clean_accuracy']['accuracy']:.1%} on {card['clean_accuracy']['n']}")


if __name__ == "__main__":
    main()
