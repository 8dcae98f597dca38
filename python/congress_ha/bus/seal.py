"""Bus authenticity: every message signed with the cluster's key, replays refused (pure).

Anyone who can publish to the broker could otherwise stop a process with two
forged heartbeats or run an action by forging a request.  So every message
carries a *seal* in its oslo.messaging context::

    {"v": 1, "from": member, "ts": wall-clock seconds, "nonce": 32 hex,
     "kid": key id, "mac": HMAC-SHA256 hex}

The MAC covers the protocol version, topic, method, sender, time, nonce and
the message's arguments in canonical JSON (sorted keys, no spaces), so none of
them can be changed or moved to another method.  A reply is sealed too, bound
to its request's nonce: a reply cannot be forged or given to another call.

A receiver refuses a message that is unsigned, signed with a key it does not
hold, altered (``forged``), older or newer than ``max_age`` by its own clock
(``stale``: a replay from long ago, or a clock off by that much), or whose
nonce it has already taken within that window (``replayed``).  Nodes of a
cluster keep their clocks within a few seconds of each other anyway
(Pacemaker's logs and fencing history assume it); ``max_age`` is far larger.

The key file holds one key per line (``#`` comments allowed), at least
``MIN_KEY_CHARS`` characters each.  The first key signs; every key verifies:
a key is rotated without stopping the cluster by adding the new key as a
second line everywhere, then making it the first everywhere, then removing
the old one (docs/security.md).

Without a key (only allowed with a broker on this host, see config.py) seals
carry no MAC and nothing is checked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

PROTOCOL = 1          # the bus protocol version, in every seal
MIN_KEY_CHARS = 32    # 128 bits as hex; `congress-ha-ctl bus-key` writes 64 hex digits
MAX_SEEN = 200_000    # nonces remembered per receiver (a few minutes of a large cluster)


class SealError(ValueError):
    """A message whose seal does not hold; ``kind`` is forged, stale or replayed."""

    def __init__(self, kind: str, why: str) -> None:
        super().__init__(why)
        self.kind = kind


class BadKey(ValueError):
    """The key file cannot be used; the message names the file and the fix."""


def new_key() -> str:
    """A fresh key: 32 random bytes as 64 hex digits."""
    return os.urandom(32).hex()


def parse_keys(text: str, where: str) -> list[bytes]:
    """The keys of a key file's text, first (signing) key first."""
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if len(line) < MIN_KEY_CHARS or any(c.isspace() for c in line):
            raise BadKey(f"{where}:{number}: a bus key is one word of at least "
                            f"{MIN_KEY_CHARS} characters; write a new one with "
                            "`congress-ha-ctl bus-key --write FILE`")
        keys.append(line.encode())
    if not keys:
        raise BadKey(f"{where} holds no key; write one with "
                        "`congress-ha-ctl bus-key --write FILE`")
    return keys


def read_keys(path: str) -> list[bytes]:
    """The keys of ``path``, which only its owner and group may read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise BadKey(f"[bus] key_file = {path}: cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, encoding="utf-8", errors="replace") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if mode & 0o007:
            raise BadKey(f"[bus] key_file = {path} is readable by every user "
                            f"(mode {mode & 0o777:04o}): the key signs every bus message; "
                            f"chmod 0640 {path}")
        return parse_keys(fh.read(), f"[bus] key_file = {path}")


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"congress-ha bus key " + key).hexdigest()[:8]


def canonical(value: Any) -> bytes:
    """The bytes a MAC covers: JSON with sorted keys, the same on both ends
    (what oslo.messaging delivers is JSON too: tuples come back as lists)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=True).encode()


class Sealer:
    """Seals what this process sends and checks what it receives."""

    def __init__(self, keys: list[bytes] | None, sender: str, max_age: float = 120.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.keys = {key_id(k): k for k in keys or []}
        self.signing = (key_id(keys[0]), keys[0]) if keys else None
        self.sender = sender
        self.max_age = max_age
        self.clock = clock

    @property
    def signed(self) -> bool:
        return self.signing is not None

    # -- requests -------------------------------------------------------------

    def seal(self, topic: str, method: str, args: dict[str, Any]) -> dict[str, Any]:
        seal: dict[str, Any] = {"v": PROTOCOL, "from": self.sender, "ts": self.clock(),
                                "nonce": os.urandom(16).hex()}
        if self.signing:
            kid, key = self.signing
            seal["kid"] = kid
            seal["mac"] = self._mac(key, topic, method, seal, args)
        return seal

    def check(self, topic: str, method: str, seal: Any, args: dict[str, Any],
              seen: Seen) -> dict[str, Any]:
        """``seal`` if it holds for this message; ``SealError`` if not."""
        if not self.signing:
            return seal if isinstance(seal, dict) else {}
        if not isinstance(seal, dict) or not isinstance(seal.get("mac"), str):
            raise SealError("forged", "unsigned (no seal in its context)")
        key = self.keys.get(seal.get("kid"))  # type: ignore[arg-type]
        if key is None:
            raise SealError("forged", f"signed with an unknown key {str(seal.get('kid'))[:8]!r} "
                            "([bus] key_file differs between nodes?)")
        if not hmac.compare_digest(seal["mac"], self._mac(key, topic, method, seal, args)):
            raise SealError("forged", f"bad signature (claims to be from "
                            f"{str(seal.get('from'))[:60]})")
        ts, now = seal.get("ts"), self.clock()
        if type(ts) not in (int, float) or abs(now - ts) > self.max_age:
            skew = f"{now - ts:+.1f}s old" if type(ts) in (int, float) else "no time"
            raise SealError("stale", f"from {str(seal.get('from'))[:60]}, {skew}; at most "
                            f"{self.max_age:.0f}s ([bus] max_message_age) are taken: a replay, "
                            "or that node's clock is off (run NTP on every node)")
        if not seen.first(str(seal.get("nonce")), ts + self.max_age, now):
            raise SealError("replayed", f"from {str(seal.get('from'))[:60]}: nonce "
                            f"{str(seal.get('nonce'))[:32]} already taken")
        return seal

    # -- replies --------------------------------------------------------------

    def seal_reply(self, request: dict[str, Any], body: Any) -> dict[str, Any]:
        if not self.signing:
            return {"r": body}
        kid, key = self.signing
        return {"r": body, "kid": kid, "mac": self._reply_mac(key, request, body)}

    def open_reply(self, request: dict[str, Any], answer: Any) -> Any:
        """The body of a sealed reply; ``SealError`` if the seal does not hold."""
        if not isinstance(answer, dict) or "r" not in answer:
            raise SealError("forged", "a reply without a seal")
        if not self.signing:
            return answer["r"]
        key = self.keys.get(answer.get("kid"))  # type: ignore[arg-type]
        mac = answer.get("mac")
        if key is None or not isinstance(mac, str) or not hmac.compare_digest(
                mac, self._reply_mac(key, request, answer["r"])):
            raise SealError("forged", "a reply with a bad or missing signature")
        return answer["r"]

    # -- the MACs -------------------------------------------------------------

    @staticmethod
    def _mac(key: bytes, topic: str, method: str, seal: dict[str, Any],
             args: dict[str, Any]) -> str:
        signed = [seal.get("v"), topic, method, seal.get("from"), seal.get("ts"),
                  seal.get("nonce"), args]
        return hmac.new(key, canonical(signed), hashlib.sha256).hexdigest()

    @staticmethod
    def _reply_mac(key: bytes, request: dict[str, Any], body: Any) -> str:
        signed = ["reply", request.get("v"), request.get("nonce"), body]
        return hmac.new(key, canonical(signed), hashlib.sha256).hexdigest()


class Seen:
    """The nonces one receiver has taken, each kept until its message would be stale."""

    def __init__(self, most: int = MAX_SEEN) -> None:
        self._until: OrderedDict[str, float] = OrderedDict()
        self._most = most
        self._lock = threading.Lock()
        self.evicted = 0

    def first(self, nonce: str, until: float, now: float) -> bool:
        """True the first time ``nonce`` is offered; it is kept until ``until``."""
        with self._lock:
            while self._until:
                oldest, expiry = next(iter(self._until.items()))
                if expiry >= now and len(self._until) < self._most:
                    break  # (a message exactly max_age old is still taken: keep its nonce)
                if expiry >= now:
                    self.evicted += 1  # full: a flood from a key holder; forget the oldest
                del self._until[oldest]
            if nonce in self._until:
                return False
            self._until[nonce] = until
            return True

    def __len__(self) -> int:
        return len(self._until)
