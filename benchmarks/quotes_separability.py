"""Is Debian's `fortunes` quotes pack (issue #18's optional second text pack) separable enough to play?

Reads the topic files under /usr/share/games/fortunes (`apt-get install fortunes`), one quotation per `%` block, and
prints, side by side for the eight topics the issue names: the count per topic, the majority-class baseline, and a
TF-IDF + logistic-regression classifier's accuracy and per-topic recall in 5-fold stratified cross-validation (seed
0), the same model family as the definitions pack's `definitions-tfidf` opponent (85.5% on its test split). A
machine's separability is only a proxy for a person's: this says whether the topics are worth a human pilot.

    python benchmarks/quotes_separability.py [--dir /usr/share/games/fortunes]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TOPICS = ("computers", "politics", "science", "food", "law", "education", "love", "sports")


def read_quotes(directory: Path, topic: str) -> list[str]:
    text = (directory / topic).read_text(encoding="latin-1")
    return [" ".join(block.split()) for block in text.split("\n%\n") if block.strip() and block.strip() != "%"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/usr/share/games/fortunes"))
    args = parser.parse_args()
    missing = [topic for topic in TOPICS if not (args.dir / topic).is_file()]
    if missing:
        print(f"missing fortunes files {missing} under {args.dir}: apt-get install fortunes", file=sys.stderr)
        return 2
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import balanced_accuracy_score, recall_score
        from sklearn.model_selection import StratifiedKFold, cross_val_predict
        from sklearn.pipeline import make_pipeline
    except ImportError:
        print("scikit-learn is missing: pip install -e '.[ml-extra]'", file=sys.stderr)
        return 2
    texts: list[str] = []
    labels: list[int] = []
    for index, topic in enumerate(TOPICS):
        quotes = read_quotes(args.dir, topic)
        texts += quotes
        labels += [index] * len(quotes)
    model = make_pipeline(
        TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1),
        LogisticRegression(max_iter=2000, class_weight="balanced"),
    )
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    predicted = cross_val_predict(model, texts, labels, cv=folds)
    accuracy = sum(int(p == y) for p, y in zip(predicted, labels, strict=True)) / len(labels)
    majority = max(labels.count(i) for i in range(len(TOPICS))) / len(labels)
    recalls = recall_score(labels, predicted, average=None)
    print(f"{len(texts)} quotations in {len(TOPICS)} topics; 5-fold stratified CV, seed 0")
    print(
        f"accuracy {accuracy:.1%}  balanced accuracy {balanced_accuracy_score(labels, predicted):.1%}  "
        f"majority baseline {majority:.1%}  chance (balanced) {1 / len(TOPICS):.1%}"
    )
    print(f"{'topic':<12}{'quotes':>8}{'recall':>9}")
    for index, topic in enumerate(TOPICS):
        print(f"{topic:<12}{labels.count(index):>8}{recalls[index]:>9.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
