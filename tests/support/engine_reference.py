"""The naive reference evaluator (tests/unit/engine/reference.py), loaded once.

By path, so that it loads whatever pytest's import mode and whether or not
tests/unit/engine is a package; every user gets the same module object.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_NAME = "congress_ha_tests_engine_reference"
_PATH = Path(__file__).resolve().parents[1] / "unit" / "engine" / "reference.py"


def load():
    module = sys.modules.get(_NAME)
    if module is None:
        spec = importlib.util.spec_from_file_location(_NAME, _PATH)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[_NAME] = module
        spec.loader.exec_module(module)
    return module
