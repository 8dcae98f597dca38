"""Pure Datalog policy engine with Congress's language and incremental evaluation."""

from .ast import Rule
from .engine import Action, Engine, action_id
from .errors import PolicyError

__all__ = ["Action", "Engine", "PolicyError", "Rule", "action_id"]
