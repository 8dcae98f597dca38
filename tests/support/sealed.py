"""Bus messages sealed as a peer of the cluster would seal them (bus/seal.py), for
tests that hand messages to an Endpoint directly."""

from __future__ import annotations

from typing import Any

from congress_ha.bus.seal import Sealer

KEYS = [b"0123456789abcdef0123456789abcdef"]
PEER = Sealer(KEYS, "n9")  # another process of the cluster


def local_sealer(sender: str = "n1") -> Sealer:
    """The sealer of the process under test, holding the cluster's key."""
    return Sealer(KEYS, sender)


def ask(endpoint: Any, name: str, /, **kwargs: Any) -> Any:
    """Deliver ``name(**kwargs)`` sealed as a peer would; the opened reply (None for a cast)."""
    seal = PEER.seal(endpoint._topic, name, kwargs)
    answer = getattr(endpoint, name)({"seal": seal}, **kwargs)
    return None if answer is None else PEER.open_reply(seal, answer)


class Caller:
    """``Caller(endpoint).push_rows({}, datasource=...)``: the call delivered sealed."""

    def __init__(self, endpoint: Any) -> None:
        self._endpoint = endpoint

    def __getattr__(self, name: str):
        return lambda _ctxt=None, /, **kwargs: ask(self._endpoint, name, **kwargs)
