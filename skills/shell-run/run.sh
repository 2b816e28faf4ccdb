#!/usr/bin/env bash
# Run the command from the skill input in the current directory (the workspace).
set -u
if [ -z "${SKILL_ARG_COMMAND:-}" ]; then
    echo "shell-run: input.command is required" >&2
    exit 2
fi
exec bash -c "$SKILL_ARG_COMMAND" 2>&1
