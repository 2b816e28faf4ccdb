"""The Discord connector (discord.py). ``manifest`` and ``config`` are dependency-free;
``connector`` imports discord.py and is loaded only when the channel is enabled."""
