"""Support code shared by the tests (imported as ``tests.helpers...``; never ``from conftest``)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
"""The repository's root: the shipped integrations.d/, templates/, README.md."""
