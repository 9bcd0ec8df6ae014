"""Where a project is written: a folder mcutool owns, replaced whole and only when the new project is complete.

DESIGN.md §3: mcutool writes a new project into a hidden folder beside `-o DIR` and renames it into place when
complete; it replaces DIR only if DIR holds its marker file, refuses any other non-empty folder (unless forced),
and never removes `.` or a parent of the current directory. A failed or killed compile leaves DIR as it was.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from . import __version__
from .errors import UserError

MARKER = ".mcutool-project"
_TMP = ".mcutool-tmp-"  # the hidden folders new projects are written in: .<name>.mcutool-tmp-<pid>-<random>


def is_project(folder: Path) -> bool:
    """True when `folder` holds mcutool's marker (a project mcutool wrote and may replace)."""
    return (folder / MARKER).is_file()


def check_target(out: Path, force: bool = False) -> None:
    """Refuse a target mcutool must not replace; see the module docstring."""
    resolved = out.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise UserError(f"-o {out}: that is the current folder or one of its parents. mcutool replaces its output "
                        "folder whole, so it writes only into a folder of its own; name a new sub-folder "
                        f"(e.g. -o {out / 'mcutool_out'}).")
    if resolved.exists() and not resolved.is_dir():
        raise UserError(f"-o {out}: a file of that name exists; mcutool writes a project folder. Name a folder.")
    if resolved.is_dir() and any(resolved.iterdir()) and not is_project(resolved) and not force:
        raise UserError(f"-o {out}: the folder is not empty and was not written by mcutool (it has no {MARKER} "
                        "file), so mcutool will not replace it. Name a new or empty folder, or pass --force to "
                        "delete its contents and write the project there.")


def _remove_stale(parent: Path, name: str) -> None:
    """Hidden folders left by a compile that was killed (its process no longer exists)."""
    for tmp in parent.glob(f".{name}{_TMP}*"):
        pid = tmp.name[len(f".{name}{_TMP}"):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def new_project(out: Path, force: bool = False):
    """Yield a fresh hidden folder beside `out` to write the project in; on success it replaces `out`, on any
    failure it is removed (MCUTOOL_DEBUG=1 keeps it to inspect) and `out` is left as it was."""
    check_target(out, force)
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(parent, out.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}{_TMP}{os.getpid()}-", dir=parent))
    try:
        yield tmp
        (tmp / MARKER).write_text(f"written by mcutool {__version__}; mcutool replaces this folder whole when it "
                                  "compiles into it again\n")
    except BaseException:
        if not os.environ.get("MCUTOOL_DEBUG"):
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    _replace(tmp, out.resolve())


def _replace(new: Path, out: Path) -> None:
    """Rename `new` into place; the old folder (a project, an empty or a forced folder) goes only after."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}{_TMP}{os.getpid()}-old-", dir=out.parent))
        os.rename(out, old / "project")
    os.rename(new, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
