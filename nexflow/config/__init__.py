"""Configuration: one YAML file plus environment, validated once at start-up.

Exceptions: :class:`ConfigError` carries one :class:`ConfigProblem` per bad key
(its dotted path, what is wrong, and a hint). Nothing here raises anything else
for bad input.
"""

from nexflow.config.errors import ConfigError, ConfigProblem
from nexflow.config.loader import load_config
from nexflow.config.model import NexflowConfig

__all__ = ["ConfigError", "ConfigProblem", "NexflowConfig", "load_config"]
