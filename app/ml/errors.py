"""Errors shared by the ML registries (packs, opponents, attacks).

A registry lookup that fails is a ``KeyError`` so that callers treating registries like mappings keep working,
but the message lists the valid names, because a bare ``KeyError: 'pgdd'`` tells a player or operator nothing.
"""

from __future__ import annotations

from collections.abc import Iterable


class UnknownName(KeyError):
    """A pack, opponent or attack name that no registry knows."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.valid = tuple(sorted(valid))
        super().__init__(f"unknown {kind} {name!r}; choose one of: {', '.join(self.valid)}")

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message and wrap it in quotes.
        return str(self.args[0])
