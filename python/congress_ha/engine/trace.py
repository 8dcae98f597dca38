"""Human-readable proofs: why each row of a table holds."""

from __future__ import annotations

from .analysis import TableKey, display
from .ast import Atom, Const, Literal, Term, Var, format_value
from .evaluate import Evaluator
from .storage import Row

_MAX_DEPTH = 8
_NONE: frozenset = frozenset()


def fact_text(key: TableKey, row: Row, policy: str | None = None) -> str:
    return f"{display(key, policy)}({', '.join(format_value(v) for v in row)})"


def _plug(term: Term, binding: dict) -> Term:
    if isinstance(term, Var) and term.name in binding:
        return Const(binding[term.name])
    return term


def _instantiate(lit: Literal, binding: dict) -> str:
    atom = lit.atom
    plugged = Atom(atom.namespace, atom.table, tuple(_plug(t, binding) for t in atom.args),
                   tuple((c, _plug(t, binding)) for c, t in atom.named))
    return str(Literal(plugged, lit.negated))


def explain(ev: Evaluator, policy: str, key: TableKey) -> tuple[set[Row], list[str]]:
    rows = set(ev.db.table(key).rows)
    lines: list[str] = []
    for row in sorted(rows, key=repr):
        _explain(ev, policy, key, row, 0, set(), lines)
    return rows, lines


def _explain(ev: Evaluator, policy: str, key: TableKey, row: Row, depth: int,
             seen: set[tuple[TableKey, Row]], lines: list[str]) -> None:
    pad = "  " * depth
    text = fact_text(key, row, policy)
    table = ev.db.table(key)
    if row in table.base:
        lines.append(f"{pad}{text} is given (pushed data or a simulated update)")
        return
    if (key, row) in seen or depth >= _MAX_DEPTH:
        lines.append(f"{pad}{text} (see above)")
        return
    seen.add((key, row))
    for c in ev.by_head.get(key, ()):
        out: dict = {}
        c.plan("head", trace=True)([row], 1, out, ev.db, _NONE, _NONE)
        if row not in out:
            continue
        binding = out[row]
        if not c.rule.body:
            lines.append(f"{pad}{text} is a fact of policy '{c.rule.policy}'")
            return
        lines.append(f"{pad}{text} by rule '{c.rule.rule}'")
        for lit in c.rule.body:
            if lit.kind == "pos" and lit.source is not None:
                assert lit.key is not None
                fact = tuple(binding[t.name] if isinstance(t, Var) else t.value
                             for t in lit.args)
                if ev.by_head.get(lit.key):
                    _explain(ev, policy, lit.key, fact, depth + 1, seen, lines)
                else:
                    lines.append(f"{pad}  {fact_text(lit.key, fact, policy)} is given")
            elif lit.source is not None:
                verdict = {"neg": "is absent", "builtin": "holds"}.get(lit.kind, "does not hold")
                positive = Literal(lit.source.atom)
                lines.append(f"{pad}  {_instantiate(positive, binding)} {verdict}")
        return
    lines.append(f"{pad}{text} holds (no single derivation found)")
