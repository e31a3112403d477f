"""JSON shapes of the public API (/api/v1)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PlayerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nickname: str = Field(max_length=200)


class PlayerCreated(BaseModel):
    player_id: str
    nickname: str
    token: str


class RoundCreated(BaseModel):
    """Deliberately nothing about the answer: no label, no model output, no image index."""

    round_id: str
    image_url: str
    choices: list[str]
    eps: float
    eps_text: str
    answer_url: str


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    choice: str = Field(max_length=100)


class Confidence(BaseModel):
    label: str
    probability: float


class AnswerOut(BaseModel):
    round_id: str
    correct: bool
    choice: str
    true_label: str
    model_label: str
    model_confidence: float
    model_correct: bool
    model_top3: list[Confidence]
    clean_model_label: str
    beat_machine: bool
    points: int
    score: int
    streak: int
    eps: float
    eps_text: str
    response_ms: int
    original_url: str
    adversarial_url: str
    perturbation_url: str


class LeaderboardEntry(BaseModel):
    rank: int
    player_id: str
    nickname: str
    score: int
    rounds: int
    correct: int
    accuracy: float
    beat_machine: int
    best_streak: int


class TallyOut(BaseModel):
    answers: int
    human_accuracy: float
    model_accuracy: float
    beat_machine: int


class Problem(BaseModel):
    detail: str
