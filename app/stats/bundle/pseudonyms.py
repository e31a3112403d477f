"""Person ids in a research bundle: a keyed hash (HMAC-SHA-256) of the player id under a random key made for that
bundle alone and written nowhere. One person keeps one id throughout a bundle, so the analyses still group by
person, but a bundle cannot be joined to the player ids the public leaderboard shows, nor to another bundle."""

from __future__ import annotations

import hashlib
import hmac
import secrets


class Pseudonyms:
    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def of(self, player_id: str) -> str:
        # 128 bits as hex, the shape of every other id: no collisions in practice, nothing a spreadsheet runs.
        return hmac.new(self._key, player_id.encode(), hashlib.sha256).hexdigest()[:32]
