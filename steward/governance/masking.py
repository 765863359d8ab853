"""Masking of decision inputs before they are logged (OPA's `masked`), by JSON pointer.

A decision log is kept for years and read by auditors, so fields that must not live that
long (tokens, personal data in a proposal) are replaced by "***" before the decision is
written. Pointers follow RFC 6901 (`/action/data/owner`, `~1` for "/", `~0` for "~");
a pointer that names nothing in this input is skipped, since one masking list serves
every kind of proposal. The caller's input is never changed: the policy saw it whole.
"""

from __future__ import annotations

import copy
from typing import Any

MASK = "***"


def _tokens(pointer: str) -> list[str] | None:
    """The reference tokens of `pointer`, unescaped; None when it is not a valid pointer
    or names the whole document (which cannot be masked and still be an input)."""
    if not pointer.startswith("/"):
        return None
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _parent(doc: Any, tokens: list[str]) -> tuple[Any, str | int] | None:
    """The container holding the value `tokens` point at, and its key; None if absent."""
    node = doc
    for i, token in enumerate(tokens):
        if isinstance(node, dict):
            key: str | int = token
            if token not in node:
                return None
        elif isinstance(node, list):
            if not token.isdigit() or (token != "0" and token.startswith("0")) \
                    or int(token) >= len(node):
                return None
            key = int(token)
        else:
            return None
        if i == len(tokens) - 1:
            return node, key
        node = node[key]
    return None


def mask(input: dict[str, Any], pointers: list[str]) -> tuple[dict[str, Any], list[str]]:
    """A copy of `input` with each value that a pointer names replaced by "***", and the
    pointers that named a value (in the order given, each once): the decision's `masked`."""
    masked = copy.deepcopy(input)
    applied: list[str] = []
    for pointer in pointers:
        tokens = _tokens(pointer)
        found = _parent(masked, tokens) if tokens is not None else None
        if found is None or pointer in applied:
            continue
        container, key = found
        container[key] = MASK
        applied.append(pointer)
    return masked, applied
