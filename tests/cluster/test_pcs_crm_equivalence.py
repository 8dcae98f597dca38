"""The pcs script, the crmsh script and cib.xml describe one configuration.

Each script is applied offline to its own copy of the same empty CIB (`pcs -f`,
`CIB_file=... crm configure load update`); the results and the rendered
cib.xml are compared after normalizing what the tools spell differently
(generated ids, attribute and element order, interval spelling, defaults).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import (
    EXAMPLE,
    MINIMAL,
    build_with_crmsh,
    build_with_pcs,
    normalized,
    render_to,
    run,
    variant,
)

# The minimal example carries values that need quoting (quotes, spaces, a
# dollar sign): they must reach the CIB unchanged through sh, pcs and crmsh.
VARIANTS = ["example", "minimal-with-awkward-values", "vip-without-haproxy-no-fencing"]


@pytest.fixture(scope="module", params=VARIANTS)
def built(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "example":
        source = EXAMPLE
    elif request.param == "minimal-with-awkward-values":
        source = variant(tmp, "awkward", MINIMAL,
                         fencing__params__username="s3cr et$x'y\"z",
                         service={"config_file": "/etc/congress ha/c.conf"})
    else:
        source = variant(tmp, "vip", EXAMPLE, haproxy=None, fencing={"enabled": False})
    out = render_to(source, tmp / "out")
    build_with_pcs(out, tmp / "pcs.xml")
    build_with_crmsh(out, tmp / "crm.xml")
    return {"out": out, "pcs": tmp / "pcs.xml", "crm": tmp / "crm.xml",
            "xml": out / "cib.xml"}


def test_pcs_and_crmsh_build_the_same_configuration(built: dict[str, Path]) -> None:
    pcs, crm = normalized(built["pcs"]), normalized(built["crm"])
    for section in pcs:
        assert pcs[section] == crm[section], section


def test_scripts_build_what_cib_xml_declares(built: dict[str, Path]) -> None:
    pcs, xml = normalized(built["pcs"]), normalized(built["xml"])
    for section in pcs:
        assert pcs[section] == xml[section], section


def test_the_comparison_sees_a_difference(built: dict[str, Path]) -> None:
    # Guard against a normalization that hides everything.
    text = built["xml"].read_text().replace('value="10s"', 'value="11s"', 1)
    text = text.replace('name="monitor" interval="10s"', 'name="monitor" interval="11s"', 1)
    assert normalized(text) != normalized(built["xml"])
    assert normalized(built["pcs"])["resources"]


def test_pcs_script_refuses_to_run_twice_on_one_cib(built: dict[str, Path]) -> None:
    proc = run(["sh", str(built["out"] / "resources.pcs.sh"), "--offline",
                str(built["pcs"])], check=False)
    assert proc.returncode == 1
    assert "already configured" in proc.stderr


def test_pcs_script_offline_needs_an_existing_cib(built: dict[str, Path],
                                                  tmp_path: Path) -> None:
    proc = run(["sh", str(built["out"] / "resources.pcs.sh"), "--offline",
                str(tmp_path / "missing.xml")], check=False)
    assert proc.returncode == 2
    assert "cibadmin --empty" in proc.stderr
