"""Build step: the wheel carries schemas/, templates/ and sandbox/responses.yaml as package data
(gateway/_data/), so that an installed gateway finds them from any folder (gateway/resources.py).
Git keeps them once, at the top level, where DESIGN.md and editors expect them."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SHIPPED = ("schemas", "templates", "sandbox/responses.yaml")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout
        target = Path(self.build_lib) / "gateway" / "_data"
        for name in SHIPPED:
            source, copy = HERE / name, target / name
            copy.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, copy, dirs_exist_ok=True)
            else:
                shutil.copy2(source, copy)


setup(cmdclass={"build_py": BuildWithData})
