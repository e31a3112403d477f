"""Our DeepWordBug next to TextAttack's DeepWordBugGao2018 recipe, on the same texts and opponent.

TextAttack 0.3.11's wheel downloads from PyPI but does not run offline as shipped: importing it calls
``nltk.download`` (stopwords, wordnet, punkt, ...), and its core (AttackedText) imports flair and jieba, which
pull in large trees the project does not need. This script runs the DeepWordBug recipe anyway, in a throwaway
environment, by standing in empty modules for the packages the recipe never calls (flair, jieba, datasets,
bert_score, language_tool_python, OpenHowNet, pinyin, langdetect) and giving NLTK the standard English stopword
list in a private temporary folder. TextFooler's recipe cannot run here at all: it needs counter-fitted word
vectors from TextAttack's S3 bucket and the Universal Sentence Encoder from TF Hub.

Setup (outside the project's venv; nothing is installed into it):

    python -m venv /tmp/tavenv
    echo /path/to/.venv/lib/python3.11/site-packages > /tmp/tavenv/lib/python3.11/site-packages/project.pth
    /tmp/tavenv/bin/pip install --no-deps textattack==0.3.11 lru-dict editdistance Levenshtein rapidfuzz \
        terminaltables word2number num2words lemminflect more-itertools docopt filelock
    /tmp/tavenv/bin/pip install pandas
    PYTHONPATH=. HF_HUB_OFFLINE=1 /tmp/tavenv/bin/python benchmarks/textattack_crosscheck.py --n 100

The recipe is run as published (Levenshtein distance <= 30, stopwords kept) and once more with TextAttack's
MaxWordsPerturbed(max_percent=budget), and once with that budget rounded down as ours is (TextAttack rounds the
number of words up); ours runs with its similarity floor.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.ml.packs.text.definitions import definitions_pack  # noqa: E402
from app.ml.text import attacks  # noqa: E402
from app.ml.text.opponents import load_text_opponent  # noqa: E402
from app.ml.text.synonyms import STOPWORDS  # noqa: E402

UNUSED_BY_THE_RECIPE = ("jieba", "datasets", "bert_score", "language_tool_python", "OpenHowNet", "pinyin")
NLTK_ENGLISH_STOPWORDS = (
    "i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves he him his "
    "himself she she's her hers herself it it's its itself they them their theirs themselves what which who whom "
    "this that that'll these those am is are was were be been being have has had having do does did doing a an the "
    "and but if or because as until while of at by for with about against between into through during before after "
    "above below to from up down in out on off over under again further then once here there when where why how all "
    "any both each few more most other some such no nor not only own same so than too very s t can will just don "
    "don't should should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn doesn't hadn "
    "hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn "
    "shouldn't wasn wasn't weren weren't won won't wouldn wouldn't"
)


def stand_in_modules() -> None:
    for name in UNUSED_BY_THE_RECIPE:
        sys.modules[name] = types.ModuleType(name)
    flair, data, models = (types.ModuleType(n) for n in ("flair", "flair.data", "flair.models"))
    data.Sentence = data.Tokenizer = type("Unused", (), {})  # type: ignore[attr-defined]
    models.SequenceTagger = type("Unused", (), {})  # type: ignore[attr-defined]
    flair.data, flair.models = data, models  # type: ignore[attr-defined]
    sys.modules.update({"flair": flair, "flair.data": data, "flair.models": models})
    langdetect = types.ModuleType("langdetect")
    langdetect.detect = lambda text: "en"  # type: ignore[attr-defined]
    sys.modules["langdetect"] = langdetect
    folder = Path(tempfile.mkdtemp(prefix="nltk-"))  # private (0700): NLTK trusts only such temporary folders
    (folder / "corpora" / "stopwords").mkdir(parents=True)
    (folder / "corpora" / "stopwords" / "english").write_text("\n".join(NLTK_ENGLISH_STOPWORDS.split()))
    os.environ["NLTK_DATA"] = str(folder)
    os.environ.setdefault("TA_CACHE_DIR", str(folder / "textattack"))


def run_textattack(opponent, texts, labels, budget: float | None, round_down: bool = False) -> dict[str, float]:
    import textattack  # noqa: PLC0415 (only after the stand-ins are in place)
    from textattack.attack_recipes import DeepWordBugGao2018  # noqa: PLC0415
    from textattack.attack_results import SkippedAttackResult, SuccessfulAttackResult  # noqa: PLC0415
    from textattack.constraints.overlap import MaxWordsPerturbed  # noqa: PLC0415

    class Wrapper(textattack.models.wrappers.ModelWrapper):
        def __init__(self) -> None:
            self.model = opponent

        def __call__(self, text_input_list):
            return opponent.predict_proba(list(text_input_list))

    class FloorBudget(MaxWordsPerturbed):
        """TextAttack rounds the share of words up (ceil); the arena's budget rounds it down."""

        def _check_constraint(self, transformed_text, reference_text):
            n = min(len(transformed_text.words), len(reference_text.words))
            return len(transformed_text.all_words_diff(reference_text)) <= attacks.max_changes(n, self.max_percent)

    attack = DeepWordBugGao2018.build(Wrapper())
    if budget is not None:
        limit = (FloorBudget if round_down else MaxWordsPerturbed)(max_percent=budget)
        attack = textattack.Attack(
            attack.goal_function,
            [*attack.constraints, *attack.pre_transformation_constraints, limit],
            attack.transformation,
            attack.search_method,
        )
    success, queries, changed, attacked = 0, [], [], 0
    started = time.perf_counter()
    for text, label in zip(texts, labels, strict=True):
        result = attack.attack(text, int(label))
        if isinstance(result, SkippedAttackResult):
            continue
        attacked += 1
        queries.append(result.num_queries)
        if isinstance(result, SuccessfulAttackResult):
            success += 1
            words = result.original_result.attacked_text.words
            changed.append(
                len(result.original_result.attacked_text.all_words_diff(result.perturbed_result.attacked_text))
                / max(1, len(words))
            )
    return {
        "success": success / attacked,
        "queries": float(np.mean(queries)),
        "attacked": attacked,
        "words_changed_when_fooled": float(np.mean(changed)) if changed else 0.0,
        "seconds": time.perf_counter() - started,
    }


def run_ours(opponent, texts, labels, budget: float) -> dict[str, float]:
    started = time.perf_counter()
    results = attacks.deepwordbug(opponent, texts, labels, budget, seed=0)
    clean = opponent.predict_proba(texts).argmax(1) == np.asarray(labels)
    worked = [r for r, ok in zip(results, clean, strict=True) if ok]
    fooled = [r for r in worked if r.success]
    return {
        "success": len(fooled) / len(worked),
        "queries": float(np.mean([r.queries for r in worked])),
        "attacked": len(worked),
        "words_changed_when_fooled": float(np.mean([r.share_changed for r in fooled])),
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--budget", type=float, default=0.25)
    parser.add_argument("--opponent", default="definitions-tfidf")
    args = parser.parse_args()
    stand_in_modules()
    pack = definitions_pack()
    opponent = load_text_opponent(args.opponent)
    texts, labels = list(pack.test.texts[: args.n]), [int(y) for y in pack.test.labels[: args.n]]
    rows = {
        f"arena deepwordbug (budget {args.budget:.0%}, floor {attacks.CHARACTER_FLOOR})": run_ours(
            opponent, texts, labels, args.budget
        ),
        "TextAttack DeepWordBugGao2018 as published": run_textattack(opponent, texts, labels, None),
        f"TextAttack DeepWordBugGao2018 + MaxWordsPerturbed({args.budget})": run_textattack(
            opponent, texts, labels, args.budget
        ),
        f"TextAttack DeepWordBugGao2018 + the arena's budget ({args.budget:.0%}, rounded down)": run_textattack(
            opponent, texts, labels, args.budget, round_down=True
        ),
    }
    print(f"{args.opponent}, first {args.n} test definitions; success over the texts it gets right when clean")
    print("| attack | attacked | success | words changed (fooled) | queries (mean) | seconds |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['attacked']} | {r['success']:.1%} | {r['words_changed_when_fooled']:.1%} "
            f"| {r['queries']:.1f} | {r['seconds']:.1f} |"
        )
    print(f"(our stopwords: {len(STOPWORDS)} words; NLTK's: {len(NLTK_ENGLISH_STOPWORDS.split())})")


if __name__ == "__main__":
    main()
