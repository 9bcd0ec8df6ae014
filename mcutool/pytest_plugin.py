"""pytest plugin: emulator-in-the-loop tests of a firmware team's own models on its own boards.

Enable it in the repository's top conftest.py (or with `pytest -p mcutool.pytest_plugin`):

    pytest_plugins = ["mcutool.pytest_plugin"]

and name the models and boards in pytest.ini (or [tool.pytest.ini_options]); model paths are relative to the
repository's root:

    [pytest]
    mcutool_models = models/kws.tflite models/anomaly.tflite
    mcutool_boards = stm32f746 hifive1-revb

Every test that takes `firmware` (or `mcutool_model` / `mcutool_board`) then runs once per model x board:

    def test_matches_tflite(firmware, mcutool_model):
        y = firmware.run(x)              # one inference in the board's emulator
        assert firmware.sram_bytes < 200_000

`--mcutool-board B` (repeatable) runs on other boards than the ini's. Each model x board is compiled once per
session (into pytest's temporary folder); `mcutool_compile(model, board, **options)` compiles with options.
"""
from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser):
    parser.addini("mcutool_models", type="args", default=[],
                  help="mcutool: model files (.tflite/.onnx, relative to the root) the firmware fixture compiles.")
    parser.addini("mcutool_boards", type="args", default=[],
                  help="mcutool: boards (mcutool boards lists them) the firmware fixture compiles for.")
    parser.addoption("--mcutool-board", action="append", default=[],
                     help="mcutool: compile for this board instead of the ini's mcutool_boards (repeatable).")


def _models(config) -> list[Path]:
    return [Path(config.rootpath) / m for m in config.getini("mcutool_models")]


def _boards(config) -> list[str]:
    return config.getoption("--mcutool-board") or list(config.getini("mcutool_boards"))


def pytest_generate_tests(metafunc):
    config = metafunc.config
    for name, values, ini in (("mcutool_model", _models(config), "mcutool_models"),
                              ("mcutool_board", _boards(config), "mcutool_boards")):
        if name in metafunc.fixturenames:
            if not values:
                raise pytest.UsageError(f"{metafunc.function.__name__} needs {name}: list them in pytest.ini's "
                                        f"{ini} (or pass --mcutool-board).")
            ids = [v.stem if isinstance(v, Path) else v for v in values]
            metafunc.parametrize(name, values, ids=ids, scope="session")


@pytest.fixture(scope="session")
def mcutool_compile(tmp_path_factory):
    """compile(model, board, **options) -> mcutool.Firmware, compiled once per session per arguments."""
    from . import api
    from .errors import UserError
    built = {}

    def compile(model, board: str, **options):
        key = (str(model), board, tuple(sorted(options.items())))
        if key not in built:
            out = tmp_path_factory.mktemp(f"{Path(model).stem}-{board}", numbered=True) / "project"
            try:
                built[key] = api.compile(model, board, out, **options)
            except UserError as exc:  # the message, not a traceback through mcutool
                pytest.fail(f"mcutool could not compile {model} for {board}: {exc}", pytrace=False)
        return built[key]
    return compile


@pytest.fixture(scope="session")
def firmware(mcutool_compile, mcutool_model, mcutool_board):
    """The model compiled and built for the board (mcutool.Firmware): .run(x), .instructions, .sram_bytes ..."""
    return mcutool_compile(mcutool_model, mcutool_board)
