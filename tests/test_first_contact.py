"""Issue 13: what a new user hit on first contact, one test per finding (finding 1, data loss, is
tests/test_output_folders.py)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import require_board_tools, require_tool, shared_model
from test_bad_input import assert_clear_error

README = Path(__file__).resolve().parents[1] / "README.md"


def cli(*args, cwd=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "mcutool", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def hello():
    return shared_model("hello_world_int8.tflite")


# -- finding 2: a project runs as it is -------------------------------------------------------------------------
def test_make_run_without_an_input_uses_the_documented_default(tmp_path):
    require_board_tools("stm32f746")
    require_tool("make")
    out = tmp_path / "p"
    assert cli("compile", hello(), "--board", "stm32f746", "-o", out).returncode == 0
    header = (out / "Makefile").read_text().split("\n\n")[0]
    assert "default_input<i>.bin" in header and ".tofile('input0.bin')" in header
    done = subprocess.run(["make", "-C", str(out), "run"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "using default_input0.bin" in done.stdout
    # the default is every value the input's zero point (real 0); the output is the reference's for it
    from mcutool import reference
    from mcutool.frontends import load_model
    g = load_model(hello())
    t = g.tensor(g.inputs[0])
    x = np.full(t.shape, int(t.quant.zero_point[0]), dtype=np.int8)
    want = reference.run(g, {g.inputs[0]: x})[g.outputs[0]]
    assert np.fromfile(out / "output0.bin", dtype=np.int8).tolist() == want.reshape(-1).tolist()


def test_make_run_of_a_uart_build_says_what_it_expects(tmp_path):
    require_board_tools("stm32f746")
    out = tmp_path / "u"
    assert cli("compile", hello(), "--board", "stm32f746", "--io", "uart", "-o", out).returncode == 0
    assert "--io uart build" in (out / "Makefile").read_text().split("\n\n")[0]
    done = subprocess.run(["make", "-C", str(out), "run"], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0 and "binary frame" in done.stdout and "mcutool run" in done.stdout, done.stdout


# -- finding 3: validate/bench options --------------------------------------------------------------------------
@pytest.mark.parametrize("samples", ["0", "-3"])
def test_validate_needs_at_least_one_sample(tmp_path, samples):
    result = cli("validate", hello(), "--board", "stm32f746", "--samples", samples, "-o", tmp_path / "v")
    assert_clear_error(result, "--samples")
    assert result.returncode == 1 and not (tmp_path / "v").exists()


def test_validate_and_bench_help_is_complete():
    for command in ("validate", "bench"):
        text = cli(command, "--help").stdout
        assert "--emit" not in text and "--no-build" not in text, text
        assert "--force" in text and "--input-shape" in text
    seed = cli("validate", "--help").stdout.split("--seed", 1)[1].split("\n  -", 1)[0]
    assert "random inputs" in seed, seed
    assert "--emit" in cli("compile", "--help").stdout


def test_bench_of_a_uart_build_says_why_there_is_no_layer_table(tmp_path):
    require_board_tools("stm32f746")
    result = cli("bench", hello(), "--board", "stm32f746", "--io", "uart", "-o", tmp_path / "b")
    assert result.returncode == 0, result.stderr
    assert "per-layer instructions: not measured for a --io uart build" in result.stdout


# -- finding 4: a failed compile leaves nothing; run names what a folder is --------------------------------------
def test_failed_compile_leaves_no_half_project_and_run_says_what_the_folder_is(tmp_path):
    require_board_tools("stm32f746")
    failed = cli("compile", hello(), "--board", "stm32f746", "-o", tmp_path / "f", "--sram-budget", "0.3")
    assert_clear_error(failed, "--sram-budget")
    assert list(tmp_path.iterdir()) == []
    assert cli("compile", hello(), "--board", "stm32f746", "--emit", "library", "-o", tmp_path / "lib").returncode == 0
    np.save(tmp_path / "x.npy", np.zeros((1, 1), np.int8))
    result = cli("run", tmp_path / "lib", "--input", tmp_path / "x.npy")
    assert_clear_error(result, "--emit library")
    assert "not a folder written by mcutool" not in result.stderr and "make there" not in result.stderr


# -- finding 5: ONNX dynamic dims and weights given as graph inputs ----------------------------------------------
def _float_conv_onnx(path, dims, weights_as_input=False):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [dims[0], 4, dims[2], dims[3]])
    inits = [] if weights_as_input else [numpy_helper.from_array(w, "w")]
    inputs = [x] + ([helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3, 3, 3])] if weights_as_input else [])
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, [y], inits),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_dynamic_onnx_dims_take_input_shape(tmp_path):
    model = _float_conv_onnx(tmp_path / "dyn.onnx", ["N", 3, "H", "W"])
    result = cli("compile", model, "--board", "stm32f746", "--calib", "random", "--no-build", "-o", tmp_path / "a")
    assert_clear_error(result, "--input-shape x=1,3,N,N")
    assert "to 1" not in result.stderr  # no advice to make the height and width 1
    ok = cli("compile", model, "--board", "stm32f746", "--calib", "random", "--no-build", "-o", tmp_path / "b",
             "--input-shape", "x=1,3,8,8")
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "b" / "report.json").read_text())["io"]["inputs"][0]["shape"] == [1, 3, 8, 8]
    wrong = cli("compile", model, "--board", "stm32f746", "--calib", "random", "--no-build", "-o", tmp_path / "c",
                "--input-shape", "x=1,4,8,8")
    assert_clear_error(wrong, "axis 1", "fixed to 3")


def test_weights_given_as_graph_inputs_are_named(tmp_path):
    model = _float_conv_onnx(tmp_path / "w.onnx", [1, 3, 8, 8], weights_as_input=True)
    result = cli("compile", model, "--board", "stm32f746", "--calib", "random", "--no-build", "-o", tmp_path / "p")
    assert_clear_error(result, "from the graph input(s) 'w'", "initializers")
    assert "computed" not in result.stderr


# -- finding 6: --emit library says what to do with it ------------------------------------------------------------
def test_library_says_which_files_to_compile_and_gives_numeric_scales(tmp_path):
    gcc = require_tool("gcc")
    require_tool("make")
    lib = tmp_path / "lib"
    result = cli("compile", hello(), "--board", "stm32f746", "--emit", "library", "-o", lib)
    assert result.returncode == 0, result.stderr
    assert "make run" not in result.stdout and "README.txt" in result.stdout
    assert "model.c" in (lib / "README.txt").read_text()
    # a user's Makefile that includes sources.mk builds a host program from exactly those files
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.c").write_text('#include <stdio.h>\n#include "model.h"\nstatic uint8_t arena[MCU_MODEL_ARENA_SIZE] '
                                '__attribute__((aligned(8)));\nint main(void) {\n'
                                '  *mcu_model_input(arena, 0) = MCU_MODEL_INPUT0_ZERO_POINT;\n  mcu_model_run(arena);\n'
                                '  printf("%d %.9g\\n", *mcu_model_output(arena, 0), (double)MCU_MODEL_OUTPUT0_SCALE);\n'
                                '  return 0;\n}\n')
    (app / "Makefile").write_text(f"include {lib}/sources.mk\napp: main.c $(MCU_MODEL_SRCS)\n"
                                  f"\t{gcc} -std=c11 -Wall -Wextra -Werror $(MCU_MODEL_INCLUDES) -o $@ $^\n")
    subprocess.run(["make", "-C", str(app)], check=True, capture_output=True, text=True)
    y, scale = subprocess.run([str(app / "app")], capture_output=True, text=True, check=True).stdout.split()
    from mcutool import reference
    from mcutool.frontends import load_model
    g = load_model(hello())
    t = g.tensor(g.inputs[0])
    want = reference.run(g, {g.inputs[0]: np.full(t.shape, int(t.quant.zero_point[0]), np.int8)})[g.outputs[0]]
    assert int(y) == int(want.reshape(-1)[0])
    assert float(scale) == pytest.approx(float(g.tensor(g.outputs[0]).quant.scale[0]), rel=1e-6)


# -- finding 7: memory.svg explains the arena line and no line hides another --------------------------------------
def test_memory_plot_explains_the_arena_line_and_keeps_lines_apart(tmp_path):
    out = tmp_path / "kws"
    assert cli("compile", shared_model("kws_ref_model.tflite"), "--board", "stm32f746", "--no-build",
               "-o", out).returncode == 0
    svg = (out / "memory.svg").read_text()
    lines = re.findall(r'<polyline fill="none" stroke="([^"]+)" stroke-width="([^"]+)"(?: stroke-dasharray="([^"]+)")?',
                       svg)
    assert len(lines) >= 2 and len({(w, d) for _, w, d in lines}) == len(lines)  # each its own width and dash
    assert "highest byte in use" in svg and "gaps between buffers count" in svg
    # the explanation is needed: on KWS the arena line lies above the layer-wise line at some layers
    from mcutool.frontends import load_model
    from mcutool.schedule.arena import arena_in_use_per_op, plan_arena
    from mcutool.schedule.liveness import live_bytes_per_op
    g = load_model(shared_model("kws_ref_model.tflite"))
    plan = plan_arena(g)
    assert any(a > b for a, b in zip(arena_in_use_per_op(g, plan), live_bytes_per_op(g)))


# -- finding 8: calibration reports say on what data; warnings once; --calib on an int8 model --------------------
def test_random_calibration_report_says_so_and_warns_once(tmp_path):
    require_board_tools("stm32f746")
    model = shared_model("hello_world_float.tflite")
    result = cli("validate", model, "--board", "stm32f746", "--calib", "random", "--samples", "1", "-o", tmp_path / "v")
    assert result.returncode == 0, result.stderr
    assert "random calibration samples themselves" in result.stdout
    assert result.stderr.count("--calib random: calibrating on random samples") == 1, result.stderr
    report = json.loads((tmp_path / "v" / "report.json").read_text())
    assert report["quantization"]["data"] == "random"


def test_calib_on_an_int8_model_is_not_silently_ignored(tmp_path):
    result = cli("compile", hello(), "--board", "stm32f746", "--calib", "random", "--no-build", "-o", tmp_path / "p")
    assert result.returncode == 0, result.stderr
    assert "already an integer model: --calib random is not used" in result.stderr


# -- finding 9: README figures ------------------------------------------------------------------------------------
def test_readme_hifive1_row_matches_kws_measured_there(tmp_path):
    require_board_tools("hifive1-revb")
    row = next(line for line in README.read_text().splitlines() if line.startswith("| hifive1-revb"))
    assert "does not fit" not in row
    claimed = re.search(r"KWS bit-exact \(SRAM ([\d,]+) of 16,384 B\)", row)
    assert claimed, row
    result = cli("validate", shared_model("kws_ref_model.tflite"), "--board", "hifive1-revb", "--samples", "1",
                 "-o", tmp_path / "k")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "k" / "report.json").read_text())
    assert report["memory"]["sram_used_bytes"] == int(claimed.group(1).replace(",", ""))


def test_readme_binary_vs_int8_table_matches_the_benchmark(tmp_path):
    require_board_tools("stm32f746")
    script = README.parent / "benchmarks" / "binary_vs_int8.py"
    done = subprocess.run([sys.executable, str(script), "-o", str(tmp_path)], capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr
    measured = {m[0]: (m[1], m[2]) for m in re.findall(r"^(conv\d)\s+binary_conv2d\s+([\d,]+)\s+conv2d\s+([\d,]+)",
                                                          done.stdout, flags=re.M)}
    table = {m[0]: (m[1], m[2]) for m in re.findall(r"^\| (conv\d) [^|]*\| [\d,]+ \| ([\d,]+) \| [\d.]+ \| ([\d,]+) \|",
                                                     README.read_text(), flags=re.M)}
    assert len(measured) == 4 and table == measured


# -- finding 10: doctor checks everything a user needs ------------------------------------------------------------
def test_doctor_lists_probes_c_libraries_and_oracles():
    result = cli("doctor")
    out = result.stdout
    for name in ("arm-none-eabi-gcc", "qemu-system-arm", "make", "openocd", "pyocd", "st-flash", "newlib", "picolibc",
                 "tflite_runtime", "tflite_micro", "onnxruntime"):
        assert re.search(rf"^\s+(ok|MISSING|absent)\s+{re.escape(name)}", out, flags=re.M), (name, out)
