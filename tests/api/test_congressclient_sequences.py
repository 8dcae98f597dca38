"""python-congressclient 2.0.1 against a real server: operation sequences on one policy.

One policy name is created, filled with facts and rules, has rules deleted, is
deleted and re-created again and again; at every re-creation the tables p, q
and r get new arities (1 or 2). After every step every table's rows
(``list_policy_rows``) and the rule list (``list_policy_rules``) must be what
the naive reference evaluator ``tests/unit/engine/reference.py`` computes
(independent of ``congress_ha.engine``):

* a table some stored rule mentions (head or body) answers exactly its rows,
  ``[]`` when it has none; a table no stored rule mentions answers 404, as
  does everything of a deleted policy (Congress's behaviour), and
  ``list_policy_tables`` lists exactly the tables mentioned;
* a rule the reference refuses (unsafe, a table at its other arity, recursion
  in a nonrecursive policy) is a 400 and changes nothing; any other error,
  and any ERROR line in the server's log, fails the test.

The client talks through keystoneauth1 with ``noauth.NoAuth()`` and
``endpoint_override``, as in ``test_congressclient.py``. A failure prints the
client calls made so far, in order, so that it can be replayed.

The random sequences never insert a rule the policy already holds: that is a
409, as in Congress, and the subject of its own test (the last one).
"""

from __future__ import annotations

import random

import pytest
from congressclient.v1.client import Client
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import noauth, session

from tests.support.engine_reference import load as load_reference

ref = load_reference()
Atom, Builtin, Lit, Reference, Rule, Var = (ref.Atom, ref.Builtin, ref.Lit, ref.Reference,
                                            ref.Rule, ref.Var)

TABLES = ("p", "q", "r")
VARS = ("x", "y", "z")
# The reference holds typed constants ((kind, value), as Congress's ObjectConstant).
CONSTS = tuple(ref.typed(c) for c in (0, 1, 2, 3, "a", "b"))
BUILTINS = ("lt", "gt", "equal", "plus")
SEEDS = (1, 2, 3, 4, 5, 6)
STEPS = 120  # operations per seed


@pytest.fixture(scope="module")
def cc(solo) -> Client:
    return Client(session=session.Session(auth=noauth.NoAuth()),
                  endpoint_override=f"http://127.0.0.1:{solo.api_port}",
                  service_type="policy", interface="public")


@pytest.fixture
def quiet_log(solo):
    """The test must leave no ERROR line in the server's log (e.g. an engine rebuild)."""
    start = len(solo.logtext())
    yield
    errors = [line for line in solo.logtext()[start:].splitlines() if " ERROR " in line]
    assert errors == [], "the server logged errors:\n" + "\n".join(errors)


def _status(exc: ks_exc.HttpError) -> str:
    try:
        message = exc.response.json()["error"]["message"]
    except Exception:  # noqa: BLE001 - only for the failure message
        message = getattr(exc.response, "text", "")
    return f"HTTP {exc.http_status}: {message}"


class Run:
    """One policy driven through the client, the reference alongside, with a call log."""

    def __init__(self, cc: Client, name: str, header: str):
        self.cc = cc
        self.name = name
        self.log: list[str] = [header]
        self.ref: Reference | None = None  # None: the policy does not exist
        self.stored: dict[str, object] = {}  # rule id -> reference Rule
        self.labels: dict[str, str] = {}  # rule id -> its name in the log
        self.refusals: list[str] = []

    def fail(self, what: str) -> str:
        return f"{what}\n  after the client calls:\n    " + "\n    ".join(self.log)

    def call(self, method: str, *args):
        """A client call; a 4xx is raised for the caller to judge, anything else fails."""
        try:
            return getattr(self.cc, method)(*args)
        except ks_exc.HttpError as exc:
            if not 400 <= (exc.http_status or 0) < 500:
                raise AssertionError(self.fail(f"cc.{method}{args!r}: {_status(exc)}")) from exc
            raise
        except Exception as exc:
            raise AssertionError(self.fail(
                f"cc.{method}{args!r} raised {type(exc).__name__}: {exc}")) from exc

    def expect_status(self, status: int, method: str, *args) -> ks_exc.HttpError:
        try:
            got = self.call(method, *args)
        except ks_exc.HttpError as exc:
            assert exc.http_status == status, self.fail(
                f"cc.{method}{args!r}: expected HTTP {status}, got {_status(exc)}")
            return exc
        raise AssertionError(self.fail(f"cc.{method}{args!r}: expected HTTP {status}, "
                                       f"got the answer {got!r}"))

    # -- operations -----------------------------------------------------------

    def create(self) -> None:
        self.log.append(f"cc.create_policy({{'name': {self.name!r}}})")
        made = self.call("create_policy", {"name": self.name})
        assert made["name"] == self.name, self.fail(f"create_policy answered {made!r}")
        self.ref, self.stored, self.labels = Reference("nonrecursive"), {}, {}
        rules = self.call("list_policy_rules", self.name)["results"]
        assert rules == [], self.fail(f"a re-created policy still lists rules: {rules}")

    def delete_policy(self) -> None:
        self.log.append(f"cc.delete_policy({self.name!r})")
        self.call("delete_policy", self.name)
        self.ref, self.stored, self.labels = None, {}, {}

    def insert(self, rule) -> None:
        text = ref.to_text(rule)
        body = {"rule": text}
        if self.ref is None:
            self.log.append(f"cc.create_policy_rule({self.name!r}, {body!r})  # no policy: 404")
            self.expect_status(404, "create_policy_rule", self.name, body)
            return
        problems = self.ref.problems(rule)
        if problems:
            self.log.append(f"cc.create_policy_rule({self.name!r}, {body!r})"
                            f"  # refused by the reference: {', '.join(sorted(problems))}")
            self.expect_status(400, "create_policy_rule", self.name, body)
            self.refusals.append(", ".join(sorted(problems)))
            return
        label = f"r{len(self.log)}"
        self.log.append(f"{label} = cc.create_policy_rule({self.name!r}, {body!r})['id']")
        try:
            made = self.call("create_policy_rule", self.name, body)
        except ks_exc.HttpError as exc:
            raise AssertionError(self.fail(f"{text!r}, a valid rule, was refused: "
                                           f"{_status(exc)}")) from exc
        assert made["rule"] == text, self.fail(f"create_policy_rule answered {made!r}")
        self.ref.insert_rule(rule)
        self.stored[made["id"]] = rule
        self.labels[made["id"]] = label

    def delete_rule(self, rule_id: str) -> None:
        rule = self.stored.pop(rule_id)
        self.log.append(f"cc.delete_policy_rule({self.name!r}, {self.labels.pop(rule_id)})"
                        f"  # {ref.to_text(rule)}")
        gone = self.call("delete_policy_rule", self.name, rule_id)
        assert gone["id"] == rule_id, self.fail(f"delete_policy_rule answered {gone!r}")
        self.ref.delete_rule(rule)

    # -- the check after every step -------------------------------------------

    def check(self) -> None:
        if self.ref is None:
            self.expect_status(404, "list_policy_rules", self.name)
            for table in TABLES:
                self.expect_status(404, "list_policy_rows", self.name, table)
            return
        listed = {r["id"]: r["rule"] for r in
                  self.call("list_policy_rules", self.name)["results"]}
        want = {rid: ref.to_text(rule) for rid, rule in self.stored.items()}
        assert listed == want, self.fail(f"list_policy_rules: server {sorted(listed.values())}"
                                         f", expected {sorted(want.values())}")
        known, rows = self.ref.tables(), self.ref.evaluate()
        tables = [t["id"] for t in self.call("list_policy_tables", self.name)["results"]]
        assert tables == sorted(known), self.fail(
            f"list_policy_tables: server {tables}, reference {sorted(known)}")
        for table in TABLES:
            if table not in known:
                self.expect_status(404, "list_policy_rows", self.name, table)
                continue
            data = [tuple(r["data"]) for r in
                    self.call("list_policy_rows", self.name, table)["results"]]
            expected = {ref.plain_row(r) for r in rows.get(table, set())}
            assert len(data) == len(set(data)) and set(data) == expected, self.fail(
                f"list_policy_rows({self.name!r}, {table!r}): server "
                f"{sorted(data, key=repr)}, reference {sorted(expected, key=repr)}")


# -- random operations -------------------------------------------------------------

def _term(rnd: random.Random, pool: list[str]):
    """A variable of ``pool`` (likelier, so that joins meet) or a constant."""
    if pool and rnd.random() < 0.7:
        return Var(rnd.choice(pool))
    return rnd.choice(CONSTS)


def random_fact(rnd: random.Random, arity: dict[str, int], flip: bool = False):
    table = rnd.choice(TABLES)
    width = 3 - arity[table] if flip else arity[table]
    return Rule(Atom(table, tuple(rnd.choice(CONSTS) for _ in range(width))))


def random_rule(rnd: random.Random, arity: dict[str, int], order: list[str],
                broken: str | None = None):
    """A rule reading only tables before its head in ``order`` (so acyclic), safe.

    ``broken``: "unsafe" (a variable of the head, of a negated literal or of a
    builtin's input that nothing binds), "arity" (one table at its other arity)
    or "recursion" (the body reads the head's table); the reference says whether
    that makes it invalid in the current policy.
    """
    width = dict(arity)
    head = rnd.choice(order[1:])
    below = order[:order.index(head)]
    tables = [rnd.choice(below) for _ in range(rnd.choice((1, 1, 2)))]
    if broken == "recursion":
        tables.append(head)
    if broken == "arity":
        flipped = rnd.choice([head, *tables])
        width[flipped] = 3 - width[flipped]
    body: list = [Lit(Atom(t, tuple(_term(rnd, list(VARS)) for _ in range(width[t]))))
                  for t in tables]
    bound = sorted({a.name for lit in body for a in lit.atom.args if isinstance(a, Var)})
    for _ in range(rnd.choice((0, 0, 1, 1, 2))):
        name = rnd.choice(BUILTINS)
        args = [_term(rnd, bound), _term(rnd, bound)]
        if name == "plus":
            out = Var(rnd.choice(VARS)) if rnd.random() < 0.8 else rnd.choice(CONSTS)
            args.append(out)
            if isinstance(out, Var) and out.name not in bound:
                bound = sorted({*bound, out.name})
        body.append(Builtin(name, tuple(args)))
    if rnd.random() < 0.35:
        t = rnd.choice(below)
        body.append(Lit(Atom(t, tuple(_term(rnd, bound) for _ in range(width[t]))),
                        negated=True))
    args = [_term(rnd, bound) for _ in range(width[head])]
    where = rnd.choice(("head", "negation", "builtin")) if broken == "unsafe" else None
    if where == "head":
        args[rnd.randrange(len(args))] = Var("w")
    elif where == "negation":
        t = rnd.choice(below)
        body.append(Lit(Atom(t, (Var("w"), *(_term(rnd, bound) for _ in range(width[t] - 1)))),
                        negated=True))
    elif where == "builtin":
        body.append(Builtin(rnd.choice(BUILTINS[:3]), (Var("w"), rnd.choice(CONSTS))))
    rnd.shuffle(body)
    return Rule(Atom(head, tuple(args)), tuple(body))


def _new_arities(rnd: random.Random, old: dict[str, int] | None) -> dict[str, int]:
    while True:
        arity = {t: rnd.choice((1, 2)) for t in TABLES}
        if arity != old:
            return arity


def _step(run: Run, rnd: random.Random, epoch: dict) -> None:
    """One random operation on ``run``; ``epoch`` holds this incarnation's arities."""
    if run.ref is None:
        if "arity" in epoch and rnd.random() < 0.15:
            run.insert(random_fact(rnd, epoch["arity"]))
            return
        epoch["arity"] = _new_arities(rnd, epoch.get("arity"))
        epoch["order"] = rnd.sample(TABLES, len(TABLES))
        run.log.append(f"# arities {epoch['arity']}")
        run.create()
        return
    what = rnd.choices(("fact", "rule", "broken", "flip", "delete", "drop"),
                       (27, 28, 15, 6, 17, 6))[0]
    if what == "delete" and run.stored:
        run.delete_rule(rnd.choice(sorted(run.stored)))
    elif what == "drop":
        run.delete_policy()
    else:
        for _ in range(20):  # a rule the policy does not hold yet (see the docstring)
            if what in ("fact", "flip", "delete"):  # "delete" with no rule: a fact
                rule = random_fact(rnd, epoch["arity"], flip=what == "flip")
            else:
                broken = rnd.choice(("unsafe", "arity", "recursion")) if what == "broken" \
                    else None
                rule = random_rule(rnd, epoch["arity"], epoch["order"], broken)
            if rule not in run.ref.rules:
                run.insert(rule)
                return


@pytest.mark.parametrize("seed", SEEDS)
def test_random_sequences_match_the_reference(cc, quiet_log, seed):
    """Create, insert facts and rules (some invalid), delete rules, delete and re-create
    the policy with new arities: after every step rows and rules are the reference's."""
    rnd = random.Random(seed)
    run = Run(cc, f"churn{seed}", f"# seed {seed}")
    epoch: dict = {}
    recreations = 0
    for _ in range(STEPS):
        was = run.ref is not None
        _step(run, rnd, epoch)
        recreations += not was and run.ref is not None
        run.check()
    if run.ref is not None:
        run.delete_policy()
        run.check()
    # The sequences do what they are meant to: several incarnations, refusals.
    assert recreations >= 2 and run.refusals, run.fail("the sequence was too tame")


def test_thirty_recreations_with_alternating_arities(cc, quiet_log):
    """p(1) then p(1, 2) and so on, 30 times over one name: each incarnation starts
    empty, answers its own rows, and the old arity never gets in the way."""
    run = Run(cc, "flipper", "# 30 re-creations, p alternating 1 and 2 columns")
    for i in range(30):
        run.create()
        run.check()
        width = 1 + i % 2
        xs = tuple(Var(v) for v in ("x", "y")[:width])
        consts = (ref.typed(i), ref.typed("a"))
        for rule in (Rule(Atom("p", consts[:width])),
                     Rule(Atom("q", xs), (Lit(Atom("p", xs)),
                                          Builtin("gt", (Var("x"), ref.typed(14))))),
                     Rule(Atom("r", xs), (Lit(Atom("p", xs)), Lit(Atom("q", xs), negated=True))),
                     # p at its other arity: refused while this incarnation uses p
                     Rule(Atom("p", consts[:3 - width]))):
            run.insert(rule)
            run.check()
        run.delete_policy()
        run.check()
    assert len(run.refusals) == 30, run.fail(f"refusals: {run.refusals}")


def test_a_rule_inserted_twice_is_refused_as_congress_does(cc, quiet_log):
    """Congress answers 409 "Rule already exists" (error 1008) and stores nothing;
    deleting the one copy then empties the table (once a second record was
    stored, and deleting the first left the rows and the rule list apart)."""
    run = Run(cc, "twice", "# a rule inserted twice")
    run.create()
    first = run.call("create_policy_rule", "twice", {"rule": "p(1)"})["id"]
    run.log.append("r1 = cc.create_policy_rule('twice', {'rule': 'p(1)'})['id']")
    for same in ("p(1)", "p( 1 )"):  # the same rule, however spelled
        run.log.append(f"cc.create_policy_rule('twice', {{'rule': {same!r}}})")
        run.expect_status(409, "create_policy_rule", "twice", {"rule": same})
    listed = [r["id"] for r in run.call("list_policy_rules", "twice")["results"]]
    assert listed == [first], run.fail(f"rules after the refused copies: {listed}")
    rows = sorted(tuple(r["data"]) for r in
                  run.call("list_policy_rows", "twice", "p")["results"])
    assert rows == [(1,)], run.fail(f"rows of p: {rows}, expected [(1,)]")
    run.log.append("cc.delete_policy_rule('twice', r1)")
    run.call("delete_policy_rule", "twice", first)
    assert run.call("list_policy_rules", "twice")["results"] == [], run.fail("rules left")
    run.expect_status(404, "list_policy_rows", "twice", "p")
    run.delete_policy()
