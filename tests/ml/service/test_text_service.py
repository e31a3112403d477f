"""The text half of the in-process model service (issue #18): classify_text gives the opponent's own probabilities,
text rounds show what their condition says (clean: the definition itself; adversarial: at most the budget's share of
words changed; random_swap: the control's synonym swaps), a round is reproducible from its result, and the contracts
survive their wire form."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.errors import ServiceUnavailable
from app.ml.packs.text.definitions import definitions_pack
from app.ml.packs.text.tokens import words
from app.ml.service.text_contracts import (
    TextJob,
    classify_from_wire,
    classify_result_from_wire,
    classify_result_to_wire,
    classify_to_wire,
    text_job_from_wire,
    text_job_to_wire,
    text_result_from_wire,
    text_result_to_wire,
)
from app.ml.service.wire import WireError
from app.ml.text.attacks import max_changes
from app.ml.text.opponents import load_text_opponent
from tests.ml.conftest import StartModelService

TFIDF = "definitions-tfidf"


@pytest.mark.anyio
async def test_classify_text_gives_the_opponents_own_probabilities(model_service: StartModelService) -> None:
    texts = ["a small domesticated animal that purrs", "a tool for cutting wood", "the capital city of a country"]
    async with model_service("fashion-mlp", timeout_s=300) as service:  # the cold start: WordNet, MiniLM
        result = await service.classify_text(TFIDF, texts, client="p1")
        names = {info.name for info in await service.text_opponents()}
        with pytest.raises(ServiceUnavailable, match="not loaded"):
            await service.classify_text("no-such-opponent", texts)
        with pytest.raises(ValueError, match="1..64"):
            await service.classify_text(TFIDF, [])
    expected = load_text_opponent(TFIDF).predict_proba(texts)
    assert names == {"definitions-tfidf", "definitions-minilm"}
    assert result.labels[:3] == ("animal", "plant", "food") and len(result.labels) == 8
    assert np.allclose(np.array(result.probabilities), expected, atol=1e-12)
    assert result.labels[int(np.argmax(result.probabilities[0]))] == "animal"


@pytest.mark.anyio
async def test_text_rounds_show_what_their_condition_says(model_service: StartModelService) -> None:
    test = definitions_pack().test
    async with model_service("fashion-mlp", timeout_s=300) as service:  # the cold start: WordNet, MiniLM
        clean = await service.text(TextJob(TFIDF, "textfooler", 0.25, seed=3, condition="clean", client="p1"))
        attacked = await service.text(TextJob(TFIDF, "deepwordbug", 0.25, seed=3, client="p1"))
        again = await service.text(TextJob(TFIDF, "deepwordbug", 0.25, seed=3, text_index=attacked.text_index))
        control = await service.text(TextJob(TFIDF, "textfooler", 0.25, seed=3, condition="random_swap"))
        with pytest.raises(ValueError, match="budget"):
            await service.text(TextJob(TFIDF, "textfooler", 0.9, seed=3))
    # The text is drawn by the seed among those the opponent gets right when clean: the same one each time.
    assert clean.text_index == attacked.text_index == control.text_index
    assert clean.original == test.texts[clean.text_index] and clean.true_label == int(test.labels[clean.text_index])
    assert clean.shown == clean.original and clean.changed == () and clean.clean_answer == clean.true_label
    assert clean.answer == clean.true_label and abs(sum(clean.probabilities) - 1.0) < 1e-9
    for result in (attacked, control):
        before, after = words(result.original), words(result.shown)
        assert len(before) == len(after) == result.n_words
        assert [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b] == list(result.changed)
        assert len(result.changed) <= max_changes(result.n_words, 0.25)
        assert result.confidence == max(result.probabilities)
        assert result.labels[result.answer] in result.labels and result.queries >= 1
    assert attacked.shown == again.shown and attacked.answer == again.answer  # reproducible from its index and seed
    assert attacked.queries > 1  # the attack asked the model about each word


def test_the_text_contracts_survive_the_wire() -> None:
    job = TextJob(
        "definitions-minilm", "transfer", 0.2, seed=9, condition="random_swap", text_index=4, client="p", share="s"
    )
    back = text_job_from_wire(json.loads(json.dumps(text_job_to_wire(job))))
    assert back == job and (back.client, back.share, back.lane) == ("p", "s", "s")
    for broken in ({"attack": "pgd"}, {"condition": "noise"}, {"budget": 2.0}, {"seed": "1"}, {"text_index": -5}):
        with pytest.raises(WireError):
            text_job_from_wire({**text_job_to_wire(job), **broken})
    assert classify_from_wire({"opponent": TFIDF, "texts": ["a b"], "client": "c"}) == (TFIDF, ["a b"], "c", "")
    wire = json.loads(json.dumps(classify_to_wire(TFIDF, ["a b"], "c", "address:10.0.0.7")))
    assert classify_from_wire(wire) == (TFIDF, ["a b"], "c", "address:10.0.0.7")
    for bad in ({"opponent": TFIDF, "texts": "a b"}, {"opponent": TFIDF, "texts": ["x" * 3000]}, {"texts": ["a"]}):
        with pytest.raises(WireError):
            classify_from_wire(bad)
    from app.ml.service.text_contracts import TextClassifyResult, TextResult

    classified = TextClassifyResult([[0.25, 0.75]], ("a", "b"))
    assert classify_result_from_wire(json.loads(json.dumps(classify_result_to_wire(classified)))) == classified
    result = TextResult(
        TFIDF, "textfooler", "adversarial", 0.25, 1, 7, "a red fruit", "a crimson fruit", (1,), 3, 2, 0,
        (0.6, 0.4), 0.6, 1, 12, 0.93, ("animal", "food"),
    )  # fmt: skip
    assert text_result_from_wire(json.loads(json.dumps(text_result_to_wire(result)))) == result
    with pytest.raises(WireError, match="one probability per label"):
        text_result_from_wire({**text_result_to_wire(result), "labels": ["animal"]})
