"""The tool interface: everything the model can call (built-ins, skills, panel tools).

Exceptions: :class:`ToolError` (a tool failed in a way the model should hear about),
:class:`UnknownTool` (the model asked for a tool that is not registered).
"""

from nexflow.tools.base import Tool, ToolContext, ToolError, ToolResult, ToolSpec, UnknownTool
from nexflow.tools.registry import ToolRegistry

__all__ = [
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "ToolSpec",
    "UnknownTool",
]
