"""Ship the top-level data folders (templates/, runtime/, firmware/, boards/) inside the wheel.

They live at the top of the source tree (DESIGN.md §2) and are copied to mcutool/_data/ when a wheel is built;
`mcutool.paths` finds them in either place.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA_DIRS = ("templates", "runtime", "firmware", "boards")


class BuildPyWithData(build_py):
    def run(self):
        super().run()
        root = Path(__file__).resolve().parent
        for name in DATA_DIRS:
            src = root / name
            dst = Path(self.build_lib) / "mcutool" / "_data" / name
            if dst.exists():
                shutil.rmtree(dst)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithData})
