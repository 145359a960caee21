"""The files the package ships beside its code: the JSON Schemas, the default message
templates and the sandbox's responses.

In a checkout they are the top-level ``schemas/``, ``templates/`` and ``sandbox/`` (where
editors point ``$schema: ../schemas/...``); a wheel carries the same files as package data
under ``gateway/_data/``, copied there by the build step in ``setup.py``. Both are found here,
through ``importlib.resources``, whatever the current folder.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

PACKAGED = "_data"


@cache
def shipped_root() -> Path:
    """The folder holding ``schemas/``, ``templates/`` and ``sandbox/``: the package data of an
    installed wheel, else the checkout the package is imported from."""
    package = Path(str(files("gateway")))
    packaged = package / PACKAGED
    return packaged if packaged.is_dir() else package.parent


def schemas_dir() -> Path:
    return shipped_root() / "schemas"


def templates_dir() -> Path:
    return shipped_root() / "templates"


def sandbox_responses() -> Path:
    return shipped_root() / "sandbox" / "responses.yaml"


def admin_ui_dir() -> Path:
    """The admin UI's Jinja2 templates and static files (package data beside gateway/web/)."""
    return Path(str(files("gateway"))) / "web" / "ui"
