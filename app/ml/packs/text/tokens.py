"""Words and what lies between them, split so that joining the pieces gives back the exact text.

A word is a run of letters; everything else (spaces, punctuation, digits, the pack's ``___`` blank) is a
separator that attacks never touch and budgets never count. Hyphenated words are two words.
"""

from __future__ import annotations

import re

TOKEN = re.compile(r"[A-Za-z]+|[^A-Za-z]+")


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(text)


def join_tokens(tokens: list[str]) -> str:
    return "".join(tokens)


def is_word(token: str) -> bool:
    return token[:1].isascii() and token[:1].isalpha()


def word_positions(tokens: list[str]) -> list[int]:
    """Indices of the word tokens, in order."""
    return [i for i, token in enumerate(tokens) if is_word(token)]


def words(text: str) -> list[str]:
    return [token for token in tokenize(text) if is_word(token)]
