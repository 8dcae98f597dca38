"""Installing the lab fence agent (fence_agent.py) where fenced looks for agents."""

from __future__ import annotations

import os
from pathlib import Path

AGENT_PATH = Path("/usr/sbin/fence_congress_lab")
SOURCE = Path(__file__).with_name("fence_agent.py")


def install_agent(dest: Path = AGENT_PATH) -> bool:
    """Install or update the agent (mode 755: fenced runs its metadata as hacluster).

    Returns whether the file changed. Shared by every lab on the host, so `down`
    leaves it in place.
    """
    text = SOURCE.read_bytes()
    try:
        if dest.read_bytes() == text and (dest.stat().st_mode & 0o777) == 0o755:
            return False
    except OSError:
        pass
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
    tmp.write_bytes(text)
    os.chmod(tmp, 0o755)
    os.replace(tmp, dest)
    return True
