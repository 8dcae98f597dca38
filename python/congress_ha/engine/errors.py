"""Errors raised by the policy engine: one type, with the rule, position and cause."""

from __future__ import annotations


def _short(text: str, limit: int = 160) -> str:
    # Error messages quote the rule on one line so that logs stay greppable.
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class Overrun(Exception):
    """An evaluation ran past its deadline (``codegen.deadline``).

    The engine may hold half a change when this is raised: its owner must not
    use it again but replace it (the PE rebuilds it from its replica).
    """


class PolicyError(ValueError):
    """A rule, query, row or request the engine rejects.

    The message names the rule text, the position (line:column, 1-based) and
    the cause, e.g. ``rule 'p(x) :- q(y)' (line 1, col 1): variable 'x' ...``.
    """

    def __init__(
        self,
        cause: str,
        text: str | None = None,
        line: int | None = None,
        col: int | None = None,
        kind: str = "rule",
    ) -> None:
        self.cause = cause
        self.text = text
        self.line = line
        self.col = col
        parts = []
        if text is not None:
            parts.append(f"{kind} '{_short(text)}'")
        if line is not None:
            parts.append(f"(line {line}, col {col})")
        prefix = " ".join(parts)
        super().__init__(f"{prefix}: {cause}" if prefix else cause)
