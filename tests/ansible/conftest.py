"""Helpers for the Ansible tests: the venv's tools, CI semantics, a lab per test.

With CI=true a missing tool or a missing root fails the test instead of
skipping it. Labs get a unique name (``ans`` + 4 random letters) and are
always taken down.
"""

from __future__ import annotations

import os
import random
import shutil
import string
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
VENV_BIN = REPO / ".venv" / "bin"


def _missing(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI=true: nothing is skipped")
    pytest.skip(message)


def tool(name: str) -> str:
    """The venv's ``name`` (ansible-playbook, ansible-lint, ...), else PATH's."""
    path = VENV_BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        _missing(f"{name} is not installed (pip install ansible-core molecule ansible-lint "
                 "yamllint into .venv)")
    return str(found)


def need_root() -> None:
    if os.geteuid() != 0:
        _missing("needs root (network namespaces for the lab)")


def run(args: list[str], *, cwd: Path = REPO, env: dict[str, str] | None = None,
        timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout[-8000:]}\nstderr:\n{proc.stderr[-4000:]}")
    return proc


def lab_name() -> str:
    return "ans" + "".join(random.choices(string.ascii_lowercase, k=4))


@pytest.fixture
def lab() -> Iterator[str]:
    """A 3-node lab without a cluster (plus infra), taken down afterwards."""
    need_root()
    lab_cmd = tool("congress-ha-lab")
    name = lab_name()
    try:
        run([lab_cmd, "--name", name, "up", "--nodes", "3", "--no-cluster"], timeout=120)
        yield name
    finally:
        run([lab_cmd, "--name", name, "down"], check=False, timeout=120)
