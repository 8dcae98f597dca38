"""Every log line names its node, put there once by the logging setup: the member
(node:role) of the supervised thread that logs, else the node id."""

from __future__ import annotations

import io
import logging

from congress_ha.threads import MemberFilter, Supervised


def test_a_record_names_the_supervised_threads_member_else_the_node():
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("[%(member)s] %(name)s: %(message)s"))
    handler.addFilter(MemberFilter("node7"))
    log = logging.getLogger("congress_ha.test_member")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("from the main thread")
        t = Supervised("worker", lambda: log.info("from a role's thread"), "node7:api-pe",
                       stopping=lambda: True)
        t.start()
        t.join(5)
    finally:
        log.removeHandler(handler)
    assert out.getvalue().splitlines() == [
        "[node7] congress_ha.test_member: from the main thread",
        "[node7:api-pe] congress_ha.test_member: from a role's thread"]
