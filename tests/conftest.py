"""Shared fixtures: where the shared models are, and how a missing tool is treated (fail in CI, skip locally)."""
import os
import shutil
from pathlib import Path

import pytest

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def shared_model(name: str) -> Path:
    path = SHARED_MODELS / name
    if not path.exists():
        pytest.fail(f"shared model {path} is missing: the tests expect ../shared/models beside the checkout")
    return path


def require_tool(name: str) -> str:
    """The tool's path; a missing tool fails the test in CI (CI=true) and skips it on a developer's machine."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (bash install.sh installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path
