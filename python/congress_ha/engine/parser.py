"""Parser for Congress's Datalog: text to syntax tree, with positions for errors.

Follows Congress's grammar (Congress.g): ``//``, ``#`` and ``/* */`` comments;
statements optionally end in ``;`` or ``.``; negation is ``not``, ``NOT`` or
``!``; strings are single-, double- or triple-quoted; identifiers may contain
dots; a table reference is ``ns:table``; parameters are positional or by
column (``name=term`` or ``0=term``). Extension: a number may carry a leading
minus sign (Congress has no negative literals).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .ast import Atom, Const, Float, Literal, Pos, Rule, Term, Var
from .errors import PolicyError

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<comment>//[^\n]*|\#[^\n]*|/\*.*?\*/)
  | (?P<string>[rRuU]?(?:\"\"\"(?:\\.|[^\\])*?\"\"\"|'''(?:\\.|[^\\])*?'''
                       |"(?:\\.|[^\\"\n])*"|'(?:\\.|[^\\'\n])*'))
  | (?P<float>(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)
  | (?P<int>0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|\d+)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
  | (?P<punct>:-|[:()\[\],=;.!+\-])
    """,
    re.VERBOSE | re.DOTALL,
)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}
_NEGATIONS = ("not", "NOT")


@dataclass(frozen=True)
class Token:
    kind: str  # id, int, float, string, punct, eof
    text: str
    offset: int
    pos: Pos


def _unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\" or i + 1 == len(body):
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "xu" and re.fullmatch(
                r"[0-9a-fA-F]+", body[i + 2 : i + (4 if nxt == "x" else 6)] or "-"):
            width = 2 if nxt == "x" else 4
            out.append(chr(int(body[i + 2 : i + 2 + width], 16)))
            i += 2 + width
        else:  # unknown escapes stay as written, as in Python
            out.append(ch)
            i += 1
    return "".join(out)


def _string_value(text: str) -> str:
    raw = text[0] in "rR"
    if text[0] in "rRuU":
        text = text[1:]
    quote = 3 if text[:3] in ('"""', "'''") else 1
    body = text[quote:-quote]
    return body if raw else _unescape(body)


def tokenize(text: str, kind: str = "rule") -> list[Token]:
    tokens: list[Token] = []
    line, line_start, offset = 1, 0, 0
    while offset < len(text):
        match = _TOKEN.match(text, offset)
        if match is None:
            raise PolicyError(
                f"syntax error: unexpected character {text[offset]!r}",
                text, line, offset - line_start + 1, kind)
        group = match.lastgroup or ""
        value = match.group()
        if group not in ("ws", "comment"):
            tokens.append(Token(group, value, offset, Pos(line, offset - line_start + 1)))
        newlines = value.count("\n")
        if newlines:
            line += newlines
            line_start = offset + value.rfind("\n") + 1
        offset = match.end()
    tokens.append(Token("eof", "", len(text), Pos(line, offset - line_start + 1)))
    return tokens


class _Parser:
    def __init__(self, text: str, kind: str) -> None:
        self.text = text
        self.kind = kind
        self.tokens = tokenize(text, kind)
        self.i = 0

    # -- helpers -----------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def fail(self, cause: str, tok: Token | None = None) -> PolicyError:
        tok = tok or self.tok
        found = "end of input" if tok.kind == "eof" else repr(tok.text)
        return PolicyError(f"syntax error: {cause}, found {found}", self.text,
                           tok.pos.line, tok.pos.col, self.kind)

    def at(self, text: str) -> bool:
        return self.tok.kind == "punct" and self.tok.text == text

    def expect(self, text: str, what: str) -> Token:
        if not self.at(text):
            raise self.fail(f"expected {what}")
        tok = self.tok
        self.i += 1
        return tok

    # -- grammar -----------------------------------------------------------
    def statements(self) -> list[Rule]:
        rules = []
        while self.tok.kind != "eof":
            start = self.tok
            rule = self.statement()
            end = self.tokens[self.i - 1]
            source = self.text[start.offset : end.offset + len(end.text)]
            rules.append(Rule(rule.head, rule.body, source.strip(), start.pos))
            if self.at(";") or self.at("."):
                self.i += 1
        return rules

    def statement(self) -> Rule:
        head = self.head()
        if self.at(","):
            raise self.fail("rules with more than one head are not supported; expected ':-'")
        body: list[Literal] = []
        if self.at(":-"):
            self.i += 1
            body.append(self.literal())
            while self.at(","):
                self.i += 1
                body.append(self.literal())
        # Congress needs no terminator between statements: a new table name
        # starts the next one.
        if self.tok.kind not in ("eof", "id") and not (self.at(";") or self.at(".")):
            raise self.fail("expected ',' or ':-' or the end of the statement")
        return Rule(head, tuple(body))

    def head(self) -> Atom:
        if self.tok.kind == "punct" and self.tok.text == "!" or (
                self.tok.kind == "id" and self.tok.text in _NEGATIONS
                and self.peek().kind == "id"):
            raise self.fail("the head of a rule cannot be negated")
        return self.modal_atom()

    def literal(self) -> Literal:
        negated = False
        if self.at("!") or (self.tok.kind == "id" and self.tok.text in _NEGATIONS
                            and self.peek().kind == "id"):
            negated = True
            self.i += 1
        return Literal(self.modal_atom(), negated)

    def modal_atom(self) -> Atom:
        tok = self.tok
        if tok.kind == "id" and self.peek().kind == "punct" and self.peek().text == "[":
            modal = tok.text
            self.i += 2
            atom = self.atom()
            self.expect("]", "']' closing the modal")
            return Atom(atom.namespace, atom.table, atom.args, atom.named, modal,
                        atom.sign, tok.pos)
        return self.atom()

    def atom(self, allow_sign: bool = False) -> Atom:
        tok = self.tok
        if tok.kind != "id":
            raise self.fail("expected a table name")
        names = [tok.text]
        self.i += 1
        while self.at(":"):
            self.i += 1
            if self.tok.kind != "id":
                raise self.fail("expected a table name after ':'")
            names.append(self.tok.text)
            self.i += 1
        sign = None
        if ((self.at("+") or self.at("-")) and self.peek().kind == "punct"
                and self.peek().text == "("):
            sign = self.tok.text
            self.i += 1
        namespace = names[0] if len(names) > 1 else None
        table = ":".join(names[1:]) if len(names) > 1 else names[0]
        args: list[Term] = []
        named: list[tuple[str | int, Term]] = []
        if self.at("("):
            self.i += 1
            if not self.at(")"):
                self.param(args, named)
                while self.at(","):
                    self.i += 1
                    self.param(args, named)
            self.expect(")", "')' or ','")
        return Atom(namespace, table, tuple(args), tuple(named), None, sign, tok.pos)

    def param(self, args: list[Term], named: list[tuple[str | int, Term]]) -> None:
        tok = self.tok
        if tok.kind in ("id", "int") and self.peek().kind == "punct" and self.peek().text == "=":
            self.i += 2
            column: str | int = tok.text if tok.kind == "id" else int(tok.text, 0)
            if any(c == column for c, _ in named):
                raise self.fail(f"column {column} is given twice", tok)
            named.append((column, self.term()))
            return
        if named:
            raise self.fail("a positional parameter cannot follow a column reference")
        args.append(self.term())

    def term(self) -> Term:
        tok = self.tok
        negative = False
        if self.at("-") and self.peek().kind in ("int", "float"):
            negative = True
            self.i += 1
            tok = self.tok
        self.i += 1
        if tok.kind == "int":
            value: int | float = int(tok.text, 0) if tok.text.strip("0") else 0
            return Const(-value if negative else value, tok.pos)
        if tok.kind == "float":
            return Const(Float(-float(tok.text) if negative else float(tok.text)), tok.pos)
        if tok.kind == "string":
            return Const(_string_value(tok.text), tok.pos)
        if tok.kind == "id":
            return Var(tok.text, tok.pos)
        self.i -= 1
        raise self.fail("expected a number, a string or a variable")


def parse(text: str) -> list[Rule]:
    """Parse zero or more statements (rules and facts)."""
    return _Parser(text, "rule").statements()


def parse_rule(text: str) -> Rule:
    """Parse exactly one rule or fact."""
    rules = parse(text)
    if len(rules) != 1:
        where = rules[1].pos if len(rules) > 1 else Pos(1, 1)
        raise PolicyError(f"expected exactly one rule, found {len(rules)}", text,
                          where.line, where.col)
    return rules[0]


def parse_atom(text: str, kind: str = "query") -> Atom:
    """Parse a single atom, as in a query (``p(x, 1)``)."""
    parser = _Parser(text, kind)
    atom = parser.atom()
    if parser.at(";") or parser.at("."):
        parser.i += 1
    if parser.tok.kind != "eof":
        raise parser.fail("expected the end of the query")
    return atom


def parse_sequence(text: str) -> list[Atom]:
    """Parse a simulate sequence: atoms with ``+``/``-`` signs, optionally separated."""
    parser = _Parser(text, "sequence")
    atoms = []
    while parser.tok.kind != "eof":
        atoms.append(parser.atom())
        while parser.at(",") or parser.at(";") or parser.at("."):
            parser.i += 1
    return atoms
