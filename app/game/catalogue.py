"""What the model service offers (its opponents and its attack catalogue), read once per request.

A round asks the same questions several times over (is this opponent loaded, which attacks can face it, what norm
does the attack use, is there a surrogate for a transfer round); :class:`Catalogue` answers them all from a single
read of the service, and forwards ``generate`` so that one object carries everything a round needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from app.errors import ServiceUnavailable
from app.messages import TEXT_UNAVAILABLE
from app.ml.service.contracts import ImageJob, ImageResult, OpponentInfo
from app.ml.service.text_contracts import TextJob, TextOpponentInfo, TextResult


class OpponentSource(Protocol):
    """What the game reads of a model service: its opponents and its attacks."""

    def opponent_info(self, name: str) -> OpponentInfo: ...

    def opponent_names(self) -> list[str]: ...

    def attack_catalog(self) -> Sequence[Mapping[str, Any]]: ...


class ImageSource(OpponentSource, Protocol):
    """A model service as far as a round is concerned: it describes its opponents and attacks and makes images."""

    async def generate(self, job: ImageJob) -> ImageResult: ...


class TextSource(Protocol):
    """What a text round needs of the model service (app/ml/service/text_contracts.py)."""

    async def text(self, job: TextJob) -> TextResult: ...

    async def text_opponents(self) -> tuple[TextOpponentInfo, ...]: ...


class RoundSource(ImageSource, TextSource, Protocol):
    """Both kinds of round: what an event's round asks of the request's :class:`Catalogue`."""


class Catalogue:
    """A model service seen by one request: opponents and attacks read from it once, images asked of it."""

    def __init__(self, service: ImageSource) -> None:
        self.service = service
        self._names: list[str] | None = None
        self._infos: dict[str, OpponentInfo] = {}
        self._attacks: Sequence[Mapping[str, Any]] | None = None
        self._text_infos: tuple[TextOpponentInfo, ...] | None = None

    def opponent_names(self) -> list[str]:
        if self._names is None:
            self._names = list(self.service.opponent_names())
        return self._names

    def opponent_info(self, name: str) -> OpponentInfo:
        # An unknown name goes to the service every time, which refuses it in its own words.
        if name not in self._infos:
            self._infos[name] = self.service.opponent_info(name)
        return self._infos[name]

    def opponents(self) -> list[OpponentInfo]:
        return [self.opponent_info(name) for name in self.opponent_names()]

    def attack_catalog(self) -> Sequence[Mapping[str, Any]]:
        if self._attacks is None:
            self._attacks = self.service.attack_catalog()
        return self._attacks

    async def generate(self, job: ImageJob) -> ImageResult:
        return await self.service.generate(job)

    # Text rounds (app/game/text.py): the service's text opponents, read once per request, and its text op.
    async def text_opponents(self) -> tuple[TextOpponentInfo, ...]:
        if self._text_infos is None:
            listing = getattr(self.service, "text_opponents", None)
            self._text_infos = tuple(await listing()) if listing is not None else ()
        return self._text_infos

    async def text(self, job: TextJob) -> TextResult:
        run = getattr(self.service, "text", None)
        if run is None:
            raise ServiceUnavailable(TEXT_UNAVAILABLE)
        result: TextResult = await run(job)
        return result


def playable_in_rounds(attack: Mapping[str, Any], info: OpponentInfo | None = None) -> bool:
    """Every attack can play a round; against an opponent without gradients only those that never ask for them
    (score, decision, transfer)."""
    if info is not None and not info.differentiable:
        return attack["threat_model"] != "white-box"
    return True


def playable_attacks(source: OpponentSource, info: OpponentInfo) -> list[str]:
    return [attack["name"] for attack in source.attack_catalog() if playable_in_rounds(attack, info)]


def attack_entry(source: OpponentSource, name: str) -> Mapping[str, Any]:
    """The attack's catalogue entry; an attack the service does not describe reads as a plain white-box L∞ one."""
    for attack in source.attack_catalog():
        if attack["name"] == name:
            return attack
    return {"name": name, "norm": "linf", "threat_model": "white-box", "explanation": "", "params": []}


def transfer_surrogate(source: OpponentSource, opponent: str) -> str | None:
    """Another loaded model with gradients on the same data pack, to craft a transfer round on."""
    pack = source.opponent_info(opponent).pack
    for name in source.opponent_names():
        info = source.opponent_info(name)
        if name != opponent and info.differentiable and info.pack == pack:
            return name
    return None
