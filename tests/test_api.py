"""The Python API (mcutool.compile/run/validate/bench) and the pytest plugin, as a firmware team's CI uses them:
two models on two boards in the emulator, against TFLite's reference kernels; the README's example as written;
a user's repository (tests/user_repo) running the plugin's models x boards tests."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mcutool
from conftest import require_board_tools, shared_model

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["hello_world_int8.tflite", "ad01_int8.tflite"]
BOARDS = ["stm32f746", "hifive1-revb"]


def tflite_reference(model: Path, x: np.ndarray) -> np.ndarray:
    from tflite_runtime.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_path=str(model), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


@pytest.mark.qemu
@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("name", MODELS)
def test_compile_run_validate(tmp_path, name, board):
    require_board_tools(board)
    model = shared_model(name)
    fw = mcutool.compile(model, board=board, out=tmp_path / "fw")
    assert fw.path == tmp_path / "fw" and fw.board == board
    assert 0 < fw.sram_bytes <= fw.report["memory"]["sram_limit_bytes"] and fw.flash_bytes > 0
    assert fw.instructions is None  # not run yet
    rng = np.random.default_rng(5)
    for _ in range(2):
        x = rng.integers(-128, 128, size=fw.inputs[0]["shape"]).astype(np.int8)
        assert np.array_equal(fw.run(x), tflite_reference(model, x))
    assert fw.instructions > 0
    assert np.array_equal(mcutool.run(fw.path, {fw.input_names[0]: x}), fw.run(x))  # by folder, inputs by name
    result = mcutool.validate(model, board=board, samples=2, seed=3, out=tmp_path / "v")
    assert result.passed and result.samples == 2 and result.mismatches == []
    assert result.instructions > 0 and result.firmware.path == tmp_path / "v"


@pytest.mark.qemu
def test_bench_counts_every_layer(tmp_path):
    require_board_tools("stm32f746")
    b = mcutool.bench(shared_model("hello_world_int8.tflite"), board="stm32f746", out=tmp_path / "b")
    assert [layer["name"] for layer in b.layers] == b.firmware.report["schedule"]["run_order"]
    assert all(layer["instructions"] > 0 for layer in b.layers)
    # the profiling image counts each layer call (its counter reads add a few instructions per layer)
    assert abs(sum(layer["instructions"] for layer in b.layers) - b.instructions) <= 0.05 * b.instructions
    assert b.macs == 288 and b.macs_per_instruction == pytest.approx(288 / b.instructions)


def test_api_errors_are_user_errors(tmp_path):
    from mcutool.errors import UserError
    with pytest.raises(UserError, match="board"):
        mcutool.compile(shared_model("hello_world_int8.tflite"), board="no-such-board", out=tmp_path / "x")
    with pytest.raises(UserError, match="--samples 0"):
        mcutool.validate(shared_model("hello_world_int8.tflite"), board="stm32f746", samples=0, out=tmp_path / "y")


def readme_api_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("### Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


@pytest.mark.qemu
def test_readme_api_example_runs_as_written(tmp_path):
    """The README's example, run from a checkout beside ../shared/models as the README's commands are."""
    for board in ("stm32f746", "hifive1-revb"):
        require_board_tools(board)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (tmp_path / "shared").symlink_to(shared_model("hello_world_int8.tflite").parents[1])
    script = checkout / "example.py"
    script.write_text(readme_api_example())
    done = subprocess.run([sys.executable, str(script)], cwd=checkout, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (checkout / "build" / "ad01_int8-stm32f746" / "report.json").exists()
    assert (checkout / "build" / "ad01_int8-hifive1-revb-validate" / "report.json").exists()


@pytest.mark.qemu
def test_user_repo_runs_the_plugins_models_x_boards(tmp_path):
    for board in BOARDS:
        require_board_tools(board)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp",
                           str(tmp_path / "base"), "-rA"], cwd=ROOT / "tests" / "user_repo", capture_output=True,
                          text=True, timeout=1200, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    passed = re.findall(r"^PASSED (\S+)", done.stdout, flags=re.M)
    want = {f"tests/test_firmware.py::{t}[{m}-{b}]" for t in ("test_output_equals_tflite", "test_fits_with_room_to_spare")
            for m in ("hello_world_int8", "ad01_int8") for b in BOARDS}
    assert set(passed) == want, done.stdout
