"""``nexflow panels install SOURCE [--yes] | verify [NAME] | update NAME | remove NAME``:
the verified install commands for panel templates (see :mod:`nexflow.panels.install`)."""

from __future__ import annotations

import argparse
import os

from nexflow.panels.install import PanelInstaller
from nexflow.skills.install import cli as install_cli

INDEX_ENV = "NEXFLOW_PANELS_INDEX"


def _factory(args: argparse.Namespace) -> PanelInstaller:
    from nexflow.cli import load_or_exit

    config = load_or_exit(None)
    index = getattr(args, "index", None) or config.panels.index or os.environ.get(INDEX_ENV)
    return PanelInstaller.at_home(
        config.home, templates_dir=config.panels.templates_dir, index=index or None
    )


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    install_cli.add_commands(sub, "panel")


def run(args: argparse.Namespace) -> int | None:
    """Run an install command; None when ``args`` is not one."""
    if not getattr(args, "install_cmd", None):
        return None
    return install_cli.run_command(args, _factory)
