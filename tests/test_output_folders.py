"""-o DIR never loses a user's files (issue 13, finding 1): mcutool replaces only a folder it wrote (its marker),
refuses any other non-empty folder and '.' or a parent, and renames a complete project into place, so a failed or
killed compile leaves the previous project as it was."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import require_board_tools, shared_model
from test_bad_input import assert_clear_error

MARKER = ".mcutool-project"


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mcutool", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def hello():
    return shared_model("hello_world_int8.tflite")


def test_compile_twice_into_the_same_folder(tmp_path):
    out = tmp_path / "proj"
    first = cli("compile", hello(), "--board", "stm32f746", "-o", out, "--no-build")
    assert first.returncode == 0, first.stderr
    assert (out / MARKER).is_file() and (out / "model.c").is_file()
    (out / "model.c").write_text("/* stale */")  # the second compile must replace the whole folder
    second = cli("compile", hello(), "--board", "stm32f746", "-o", out, "--no-build")
    assert second.returncode == 0, second.stderr
    assert "stale" not in (out / "model.c").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["proj"]  # no hidden temporary folder left beside it


def test_non_empty_user_folder_is_refused_and_kept(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    result = cli("compile", hello(), "--board", "stm32f746", "-o", out, "--no-build")
    assert_clear_error(result, "not empty", "--force")
    assert (out / "notes.txt").read_text() == "my notes"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_force_replaces_a_user_folder(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    result = cli("compile", hello(), "--board", "stm32f746", "-o", out, "--no-build", "--force")
    assert result.returncode == 0, result.stderr
    assert not (out / "notes.txt").exists() and (out / MARKER).is_file()


def test_library_into_dot_of_a_user_project_is_refused(tmp_path):
    project = tmp_path / "app"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    (project / "Makefile").write_text("all:\n")
    before = sorted(str(p.relative_to(project)) for p in project.rglob("*"))
    for target in (".", "..", str(project)):
        result = cli("compile", hello(), "--board", "stm32f746", "--emit", "library", "-o", target,
                     cwd=project / "src" if target == ".." else project)
        assert_clear_error(result, "current folder")
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*")) == before
    assert (project / "src" / "main.c").read_text().startswith("int main")


def test_default_folders_of_compile_validate_bench_differ(tmp_path):
    from mcutool.compiler import default_out_dir
    folders = {default_out_dir(Path("kws.tflite"), "stm32f746", c) for c in ("compile", "validate", "bench")}
    assert folders == {Path("build/kws-stm32f746"), Path("build/kws-stm32f746-validate"),
                       Path("build/kws-stm32f746-bench")}


def test_killed_compile_leaves_the_previous_project(tmp_path):
    require_board_tools("stm32f746")
    out = tmp_path / "kws"
    model = shared_model("kws_ref_model.tflite")
    first = cli("compile", model, "--board", "stm32f746", "-o", out)
    assert first.returncode == 0, first.stderr
    snapshot = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    proc = subprocess.Popen([sys.executable, "-m", "mcutool", "compile", str(model), "--board", "stm32f746", "-o",
                             str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    # wait until the new project is being written (its hidden folder has model.c), then kill the whole compile
    while not any((p / "model.c").exists() for p in tmp_path.glob(".kws.mcutool-tmp-*")):
        assert proc.poll() is None and time.monotonic() < deadline, "the compile ended before it could be killed"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == snapshot
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["kws"]
    # the next compile clears what the killed one left (its process is gone) and replaces the project
    again = cli("compile", model, "--board", "stm32f746", "-o", out, "--no-build")
    assert again.returncode == 0, again.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["kws"]


def test_failed_compile_leaves_the_previous_project(tmp_path):
    """A compile that fails after writing (the linked image is over the SRAM budget) removes its half project."""
    require_board_tools("stm32f746")
    out = tmp_path / "p"
    assert cli("compile", hello(), "--board", "stm32f746", "-o", out, "--no-build").returncode == 0
    before = (out / "report.json").read_text()
    result = cli("compile", hello(), "--board", "stm32f746", "-o", out, "--sram-budget", "0.3")
    assert_clear_error(result, "--sram-budget")
    assert (out / "report.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["p"]
