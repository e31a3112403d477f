"""Event settings and records built without a database, for the event rules' tests."""

from __future__ import annotations

from app.db.tables import EventRecord
from app.game import events

CATALOG = events.Catalog(opponents={"fashion-cnn": "fashion", "digits-cnn": "mnist"}, attacks=("fgsm", "pgd"))


def settings(**raw: object) -> events.EventSettings:
    body: dict[str, object] = {"name": "W", "phases": [{"opponent": "fashion-cnn", "attack": "pgd"}], **raw}
    return events.validate_settings(body, catalog=CATALOG)[2]


def event_with(**raw: object) -> EventRecord:
    return EventRecord(
        id="e" * 32,
        code="ABCDEF",
        name="W",
        host_token_hash=events.hash_secret("secret"),
        pack="fashion",
        settings=settings(**raw).to_json(),
        status="lobby",
        locked=False,
        phase=0,
        shared_rounds=0,
    )
