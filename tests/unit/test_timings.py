"""One table of timings (congress_ha.timings): the agents' shell file is generated
from it, docs/tuning.md lists it, the modules use it, and its relations hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from congress_ha import config, timings

REPO = Path(__file__).resolve().parents[2]


def test_the_agents_shell_file_is_generated_from_the_table():
    assert timings.SHELL_FILE.read_text() == timings.shell(), (
        "resource-agents/congress-ha-timings.sh is stale: run "
        "`.venv/bin/python -m congress_ha.timings --write`")


def test_docs_tuning_lists_every_timing_with_its_value():
    text = (REPO / "docs" / "tuning.md").read_text()
    for table in (timings.OPERATIONS, timings.SERVER, timings.MEASURED):
        for t in table.values():
            assert re.search(rf"\| `{t.name}` \| {t.seconds:g} s \|", text), (
                f"docs/tuning.md has no row `| `{t.name}` | {t.seconds:g} s |`")


def test_the_defaults_satisfy_every_relation():
    ha = {o.name: o.default for o in config.OPTIONS if o.group == "ha"}
    ops = timings.OPERATIONS
    assert timings.relation_errors(
        heartbeat_interval=ha["heartbeat_interval"], peer_timeout=ha["peer_timeout"],
        shadow_grace=ha["shadow_grace"], start_timeout=ops["start_timeout"].seconds,
        stop_timeout=ops["stop_timeout"].seconds) == []


@pytest.mark.parametrize("kw, option, words", [
    ({"shadow_grace": 1.0}, "shadow_grace", "must be longer than peer_timeout"),
    ({"peer_timeout": 0.4}, "peer_timeout", "less than twice heartbeat_interval"),
    ({"start_timeout": 5}, "start_timeout", "slowest start measured"),
    ({"stop_timeout": 6}, "stop_timeout", "to exit on SIGTERM"),
])
def test_a_broken_relation_names_the_option_and_why(kw, option, words):
    args = {"heartbeat_interval": 0.25, "peer_timeout": 1.0, "shadow_grace": 2.0,
            "start_timeout": 30, "stop_timeout": 20, **kw}
    errors = timings.relation_errors(**args)
    assert [o for o, _ in errors] == [option] and words in errors[0][1], errors


def test_a_shadow_grace_of_zero_turns_the_net_off_and_breaks_nothing():
    assert timings.relation_errors(heartbeat_interval=0.25, peer_timeout=1.0,
                                   shadow_grace=0) == []


def test_a_config_breaking_a_relation_is_refused_at_start(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("[DEFAULT]\ntransport_url = fake://\n[ha]\npeer_timeout = 3\n")
    with pytest.raises(config.ConfigError, match=r"\[ha\] shadow_grace.*peer_timeout"):
        config.parse_file(str(conf))


def test_no_module_spells_a_timing_of_the_table_itself():
    """Each SERVER timing is defined once: a module-level NAME = <number> with the
    table's name (or its alias MAX_SLEEP) anywhere in the package is a copy."""
    names = set(timings.SERVER) | {"MAX_SLEEP"}
    copies = []
    for path in (REPO / "python" / "congress_ha").rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = re.match(r"(\w+) = [\d.]+\b", line)
            if m and m.group(1) in names:
                copies.append(f"{path.relative_to(REPO)}:{n}: {line}")
    assert copies == []
