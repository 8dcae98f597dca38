"""python/requirements.lock: every dependency pinned, hashed, and what .venv runs."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PYTHON = Path(__file__).resolve().parents[2] / "python"
LOCK = PYTHON / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)")


def pins() -> dict[str, str]:
    out = {}
    for line in LOCK.read_text().splitlines():
        m = PIN.match(line)
        if m:
            out[canonicalize_name(m.group(1))] = m.group(2)
    return out


def declared() -> list[Requirement]:
    project = tomllib.loads((PYTHON / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in project["dependencies"] + extras["test"]
            + extras["psycopg2"]]


def test_every_declared_dependency_is_pinned_within_its_range():
    locked = pins()
    for req in declared():
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is in pyproject.toml but not in {LOCK.name}: " \
                               "run `make upgrade-deps`"
        assert req.specifier.contains(locked[name], prereleases=True), \
            f"{req.name}=={locked[name]} in {LOCK.name} is outside {req.specifier}"
        for extra in req.extras:  # psycopg[binary] -> psycopg-binary pinned alike
            dep = canonicalize_name(f"{req.name}-{extra}")
            assert locked.get(dep) == locked[name], f"{dep} not pinned with {req.name}"


def test_every_pin_carries_hashes():
    text = LOCK.read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    for block in blocks:
        if PIN.match(block):
            assert "--hash=sha256:" in block, f"no hash for {block.splitlines()[0]}"


def test_the_venv_runs_exactly_the_locked_versions():
    wrong = {}
    for name, version in pins().items():
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = None
        if have != version:
            wrong[name] = (version, have)
    assert not wrong, f"installed != {LOCK.name} (locked, installed): {wrong}; run `make setup`"


def test_pip_and_setuptools_are_pinned_too():
    locked = pins()
    assert "pip" in locked and "setuptools" in locked
