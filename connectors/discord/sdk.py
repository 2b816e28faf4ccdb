"""discord.py, imported in one place.

Its voice player imports ``audioop``, which raises a DeprecationWarning on import (the
module leaves the standard library in Python 3.13; discord.py depends on ``audioop-lts``
there). Voice is unused here, and the warning is not ours to fix, so it is silenced for
this import only.
"""

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord
    from discord import gateway, http

__all__ = ["discord", "gateway", "http"]
