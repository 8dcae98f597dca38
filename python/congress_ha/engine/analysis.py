"""Static checks: name resolution, column references, arity, safety, recursion.

A parsed rule is resolved in the context of its policy into a ``Resolved``
rule whose literals point at table keys ``(namespace, table)`` with
positional arguments only. Everything a user can get wrong is reported here
as a ``PolicyError`` naming the rule, the position and the cause.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from . import builtins as bi
from .ast import Atom, Literal, Pos, Rule, Term, Var
from .errors import PolicyError

TableKey = tuple[str, str]
EXEC_NS = "execute[]"  # namespace of execute[...] heads; not a valid identifier
BUILTIN_NS = "builtin"
AUTO = "?"  # prefix of variables made up for omitted columns; never user-written


@dataclass(frozen=True)
class RLit:
    """A body literal after resolution: a table (positive or negated) or a builtin."""

    kind: str  # "pos", "neg" or "builtin"
    key: TableKey | None
    args: tuple[Term, ...]
    builtin: bi.Builtin | None = None
    source: Literal | None = field(default=None, compare=False)


@dataclass
class Resolved:
    rule: Rule
    policy: str
    head_key: TableKey
    head_args: tuple[Term, ...]
    body: tuple[RLit, ...]
    hidden: list[Resolved] = field(default_factory=list)

    @property
    def text(self) -> str:
        return str(self.rule)


@dataclass
class Context:
    """What resolution needs to know about the rest of the engine."""

    policy: str
    columns: Callable[[TableKey], list[str] | None]
    arity: Callable[[TableKey], int | None]


def display(key: TableKey, policy: str | None = None) -> str:
    ns, table = key
    if ns == EXEC_NS:
        return f"execute[{table}]"
    if table.startswith("#"):
        return table[1:]
    return table if ns == policy else f"{ns}:{table}"


def _err(rule: Rule, pos: Pos, cause: str) -> PolicyError:
    return PolicyError(cause, rule.source, pos.line, pos.col)


def _vars(terms: Iterable[Term]) -> list[str]:
    return [t.name for t in terms if isinstance(t, Var)]


def _positional(rule: Rule, atom: Atom, key: TableKey, index: int,
                columns: list[str] | None, policy: str) -> tuple[Term, ...]:
    """Turn ``t(a, col=b)`` into positional arguments, as Congress does."""
    if not atom.named:
        return atom.args
    name = display(key, policy)
    if columns is None:
        raise _err(rule, atom.pos, f"literal '{atom}' uses column references but the "
                   f"columns of table '{name}' are not known (set its schema first)")
    args: list[Term | None] = list(atom.args) + [None] * (len(columns) - len(atom.args))
    if len(atom.args) > len(columns):
        raise _err(rule, atom.pos, f"literal '{atom}' has {len(atom.args)} arguments but "
                   f"table '{name}' has {len(columns)} columns")
    for column, term in atom.named:
        if isinstance(column, int):
            if column >= len(columns):
                raise _err(rule, atom.pos, f"column number {column} is too large for table "
                           f"'{name}' (columns 0..{len(columns) - 1})")
            position = column
        elif column in columns:
            position = columns.index(column)
        else:
            raise _err(rule, atom.pos, f"unknown column '{column}' in table '{name}' "
                       f"(columns: {', '.join(columns)})")
        if args[position] is not None:
            raise _err(rule, atom.pos, f"column '{columns[position]}' of table '{name}' is "
                       "given more than one value")
        args[position] = term
    return tuple(a if a is not None else Var(f"{AUTO}{index}_{i}", atom.pos)
                 for i, a in enumerate(args))


def resolve(rule: Rule, ctx: Context) -> Resolved:
    """Resolve and check one rule; raise PolicyError on the first problem found."""
    head = rule.head
    if head.sign:
        raise _err(rule, head.pos, f"'{head.qualified}{head.sign}' updates are only allowed "
                   "in simulate sequences")
    if head.named:
        raise _err(rule, head.pos, "column references are not allowed in the head of a rule")
    if head.modal is not None:
        if head.modal.lower() != "execute":
            raise _err(rule, head.pos, f"only the 'execute' modal is allowed; found "
                       f"'{head.modal}'")
        if head.namespace is None:
            raise _err(rule, head.pos, "execute[...] needs a datasource-qualified action, "
                       "e.g. execute[nova:servers.pause(x)]")
        head_key = (EXEC_NS, f"{head.namespace}:{head.table}")
    else:
        if head.namespace is not None:
            raise _err(rule, head.pos, f"the head '{head}' should not reference any policy "
                       "or datasource: a rule defines a table of its own policy")
        # Any arity: Congress refuses a head (or fact) named like a builtin
        # ("Conflict with built-in tablename"), whatever its number of columns.
        if head.table in bi.BUILTINS or head.table == bi.CLOCK[1]:
            raise _err(rule, head.pos, f"'{head.table}' is a builtin and cannot be defined "
                       "by a rule (conflict with built-in tablename)")
        head_key = (ctx.policy, head.table)
    if not rule.body:
        unbound = _vars(head.args)
        if unbound:
            raise _err(rule, head.pos, f"fact is not ground: variable '{unbound[0]}' has no "
                       "value (a fact takes only numbers and strings)")

    seen_arity: dict[TableKey, tuple[int, Atom]] = {}

    def check_arity(key: TableKey, atom: Atom, width: int) -> None:
        known = ctx.arity(key)
        if key in seen_arity and seen_arity[key][0] != width:
            known = seen_arity[key][0]
        if known is not None and known != width:
            raise _err(rule, atom.pos, f"arity mismatch: table '{display(key, ctx.policy)}' "
                       f"has {known} columns but '{atom}' gives {width}")
        seen_arity.setdefault(key, (width, atom))

    if head_key[0] != EXEC_NS:
        check_arity(head_key, head, len(head.args))

    body: list[RLit] = []
    for index, lit in enumerate(rule.body):
        atom = lit.atom
        if atom.modal is not None:
            raise _err(rule, atom.pos, f"modals are not allowed in the body of a rule; found "
                       f"'{atom.modal}' in '{lit}'")
        if atom.sign:
            raise _err(rule, atom.pos, f"'{atom.qualified}{atom.sign}' updates are only "
                       "allowed in simulate sequences")
        bare = atom.namespace is None
        if atom.table == bi.CLOCK[1] and (bare or atom.namespace == BUILTIN_NS):
            # now(x): a table the DSD publishes, read like any other (positive
            # or negated, joined, checked for arity against its schema).
            args = _positional(rule, atom, bi.CLOCK, index, bi.CLOCK_COLUMNS, ctx.policy)
            check_arity(bi.CLOCK, atom, len(args))
            body.append(RLit("neg" if lit.negated else "pos", bi.CLOCK, args, None, lit))
            continue
        if atom.namespace == BUILTIN_NS or (bare and atom.table in bi.BUILTINS
                                            and not atom.named):
            builtin = bi.lookup(atom.table, len(atom.args))
            if builtin is None and atom.namespace == BUILTIN_NS:
                known = bi.BUILTINS.get(atom.table)
                cause = (f"builtin '{atom.table}' takes {known.arity} arguments, "
                         f"'{atom}' gives {len(atom.args)}" if known
                         else f"unknown builtin '{atom.table}'")
                raise _err(rule, atom.pos, cause)
            if builtin is not None:
                if atom.named:
                    raise _err(rule, atom.pos, "column references are not allowed in builtins")
                if lit.negated:
                    body.append(RLit("neg-builtin", None, atom.args, builtin, lit))
                else:
                    body.append(RLit("builtin", None, atom.args, builtin, lit))
                continue
        key = (atom.namespace or ctx.policy, atom.table)
        args = _positional(rule, atom, key, index, ctx.columns(key), ctx.policy)
        check_arity(key, atom, len(args))
        body.append(RLit("neg" if lit.negated else "pos", key, args, None, lit))

    _check_safety(rule, head, body)
    resolved = Resolved(rule, ctx.policy, head_key, head.args, tuple(body))
    _project_negations(resolved)
    return resolved


def _check_safety(rule: Rule, head: Atom, body: list[RLit]) -> None:
    # Congress: variables of the head, of negated literals and of builtin
    # inputs must be bound by positive table literals, or by the outputs of
    # builtins whose own inputs are bound.
    bound = {v for lit in body if lit.kind == "pos" for v in _vars(lit.args)}
    pending = [lit for lit in body if lit.kind == "builtin"]
    progress = True
    while progress:
        progress = False
        for lit in list(pending):
            assert lit.builtin is not None
            if set(_vars(lit.args[: lit.builtin.num_inputs])) <= bound:
                bound |= set(_vars(lit.args))
                pending.remove(lit)
                progress = True
    for lit in body:
        assert lit.source is not None
        if lit.kind in ("builtin", "neg-builtin"):
            assert lit.builtin is not None
            checked = lit.args if lit.kind == "neg-builtin" else lit.args[: lit.builtin.num_inputs]
            for name in _vars(checked):
                if name not in bound:
                    raise _err(rule, lit.source.pos, f"variable '{name}' in an input of builtin "
                               f"'{lit.source}' is not bound by a positive literal")
        elif lit.kind == "neg":
            for name in _vars(lit.args):
                if name not in bound and not name.startswith(AUTO):
                    raise _err(rule, lit.source.pos, f"variable '{name}' in negated literal "
                               f"'{lit.source}' is not bound by a positive literal")
    for name in _vars(head.args):
        if name not in bound:
            raise _err(rule, head.pos, f"variable '{name}' in the head is not bound by a "
                       "positive literal")


def _project_negations(resolved: Resolved) -> None:
    """Rewrite ``not t(x, <omitted column>)`` as ``not h(x)`` with ``h(x) :- t(x, _)``.

    Congress makes up variables for omitted columns; inside a negation they
    mean "some value", so the negation reads a projection of the table. The
    projection is a hidden table of the policy, maintained like any other.
    """
    body = list(resolved.body)
    for i, lit in enumerate(body):
        if lit.kind != "neg" or not any(n.startswith(AUTO) for n in _vars(lit.args)):
            continue
        assert lit.key is not None and lit.source is not None
        kept = [v for v in dict.fromkeys(_vars(lit.args)) if not v.startswith(AUTO)]
        rename = {v: f"${n}" for n, v in enumerate(kept)}
        pattern = ", ".join("_" if isinstance(a, Var) and a.name.startswith(AUTO)
                            else rename.get(a.name, a.name) if isinstance(a, Var) else str(a)
                            for a in lit.args)
        hidden_key = (resolved.policy, f"#not {display(lit.key, resolved.policy)}({pattern})")
        hidden_args = tuple(Var(rename[v]) for v in kept)
        body_args = tuple(Var(rename[a.name]) if isinstance(a, Var) and a.name in rename else a
                          for a in lit.args)
        hidden_rule = Rule(Atom(None, hidden_key[1], hidden_args),
                           (Literal(Atom(lit.key[0], lit.key[1], body_args)),))
        resolved.hidden.append(Resolved(hidden_rule, resolved.policy, hidden_key, hidden_args,
                                        (RLit("pos", lit.key, body_args, None, None),)))
        body[i] = RLit("neg", hidden_key, tuple(Var(v) for v in kept), None, lit.source)
    resolved.body = tuple(body)


# -- dependency graph ----------------------------------------------------------

def edges_of(rules: Iterable[Resolved]) -> dict[TableKey, dict[TableKey, bool]]:
    """head -> {body table: negated?} over table literals (builtins excluded)."""
    graph: dict[TableKey, dict[TableKey, bool]] = {}
    for rule in rules:
        out = graph.setdefault(rule.head_key, {})
        for lit in rule.body:
            if lit.key is not None:
                out[lit.key] = out.get(lit.key, False) or lit.kind == "neg"
                graph.setdefault(lit.key, {})
    return graph


def components(graph: dict[TableKey, dict[TableKey, bool]]) -> list[list[TableKey]]:
    """Strongly connected components, each after the components it depends on."""
    index: dict[TableKey, int] = {}
    low: dict[TableKey, int] = {}
    on_stack: set[TableKey] = set()
    stack: list[TableKey] = []
    result: list[list[TableKey]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.append(member)
                    if member == node:
                        break
                result.append(sorted(comp))
    return result


def is_cyclic(comp: list[TableKey], graph: dict[TableKey, dict[TableKey, bool]]) -> bool:
    return len(comp) > 1 or comp[0] in graph.get(comp[0], {})


def _path(graph: dict[TableKey, dict[TableKey, bool]], start: TableKey, goal: TableKey,
          inside: set[TableKey]) -> list[TableKey]:
    # Shortest path start -> goal within one component, for error messages.
    previous: dict[TableKey, TableKey | None] = {start: None}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph.get(node, {})):
                if child in inside and child not in previous:
                    previous[child] = node
                    nxt.append(child)
        frontier = nxt
        if goal in previous:
            break
    path = [goal]
    while previous.get(path[-1]) is not None:
        path.append(previous[path[-1]])  # type: ignore[arg-type]
    return list(reversed(path))


def check_recursion(candidate: Resolved, rules: list[Resolved],
                    kind_of: Callable[[str], str]) -> None:
    """Reject recursion in nonrecursive policies and recursion through negation."""
    everything = rules + [candidate] + candidate.hidden
    graph = edges_of(everything)
    policy_of = {r.head_key: r.policy for r in everything}
    rule, policy = candidate.rule, candidate.policy
    for comp in components(graph):
        if not is_cyclic(comp, graph):
            continue
        members = set(comp)
        start = candidate.head_key if candidate.head_key in members else comp[0]
        nonrec = sorted({policy_of[k] for k in comp if kind_of(policy_of[k]) != "recursive"})
        if nonrec:
            back = next(k for k in sorted(graph[start]) if k in members)
            cycle = [start] + _path(graph, back, start, members)[:-1] + [start]
            names = " -> ".join(display(k, policy) for k in cycle)
            raise _err(rule, rule.pos, f"Rules are recursive: {names} (policy "
                       f"'{nonrec[0]}' is of kind nonrecursive; create it with kind "
                       "'recursive' to allow recursion)")
        for head in comp:
            for body, negated in sorted(graph[head].items()):
                if negated and body in members:
                    back = _path(graph, body, head, members)
                    names = [display(head, policy), "not " + display(body, policy)]
                    names += [display(k, policy) for k in back[1:]]
                    raise _err(rule, rule.pos, "recursion through negation is not "
                               f"stratified: {' -> '.join(names)}")
