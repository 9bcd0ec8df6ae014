"""Where the data folders (templates, runtime, firmware, boards) are: in the wheel or in the source tree."""
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The folder `name` (templates, runtime, firmware, boards), installed (mcutool/_data) or in a checkout."""
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"mcutool's data folder {name!r} is missing from this installation; reinstall mcutool")
