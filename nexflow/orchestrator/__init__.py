"""The agent loop: context → model → tools → … → reply.

It never raises for model or tool failures: every turn ends with a reply the user can
read (the failure explained) and an audit trail.
"""

from nexflow.orchestrator.agent import Orchestrator, TurnResult
from nexflow.orchestrator.persona import PersonaFiles

__all__ = ["Orchestrator", "PersonaFiles", "TurnResult"]
