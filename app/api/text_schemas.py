"""The JSON shapes of the text rounds' API (issue #18): app/api/text.py."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas import RevealOut


class TextRoundCreate(BaseModel):
    """Both optional: the service's default text opponent and TextFooler. Unknown names are refused with the valid
    ones listed."""

    model_config = ConfigDict(extra="forbid")
    opponent: str | None = Field(None, max_length=60, description="A text opponent from GET /api/v1/text/opponents")
    attack: Literal["textfooler", "deepwordbug", "transfer"] | None = Field(
        None, description="textfooler (synonym swaps), deepwordbug (typos) or transfer (crafted on the other model)"
    )


class TextRoundCreated(BaseModel):
    """Deliberately nothing about the answer: the shown text only, never the original, the changed words, the
    label or the model's output."""

    round_id: str
    kind: Literal["text"] = "text"
    shown_text: str = Field(description="The definition to read; ___ stands for the defined word")
    choices: list[str]
    opponent: str
    attack: str
    budget: float = Field(description="The share of the words the attack could change (0-0.5)")
    answer_url: str


class TextAnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    choice: str = Field(max_length=100)


class ChangedWord(BaseModel):
    position: int = Field(description="The word's index among the words of the text (punctuation is not a word)")
    original: str
    shown: str


class TextAnswerOut(RevealOut):
    original_text: str
    shown_text: str
    changed_words: list[ChangedWord]
    n_words: int
    budget: float
    similarity: float | None = Field(None, description="all-MiniLM-L6-v2 cosine of shown to original text")
    queries: int | None = Field(None, description="Texts the attack showed the model")
    opponent: str
    attack: str
    surrogate: str | None = None
    condition: str = Field(description="adversarial, clean or random_swap (the same count of random synonyms)")


class TextOpponentOut(BaseModel):
    name: str
    pack: str
    class_names: list[str]
    clean_accuracy: float
    test_size: int
    description: str


class TextStatsCell(BaseModel):
    opponent: str
    condition: str = Field(description="adversarial, clean or random_swap")
    budget: float = Field(description="The share of words the attack could change")
    n: int
    human_accuracy: float
    human_interval: list[float] = Field(description="95% Wilson interval")
    model_accuracy: float
    model_interval: list[float] = Field(description="95% Wilson interval")
    words_changed: float = Field(description="Mean share of the words that changed")
    similarity: float | None = Field(None, description="Mean all-MiniLM-L6-v2 cosine of shown to original")
