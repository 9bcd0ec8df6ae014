"""Firmware from the shared models runs in QEMU bit-exact with the reference (issue 3's emulator-in-the-loop).

The expected outputs come from mcutool.reference, which tests/test_reference_models.py proves equal to
tflite-runtime's BUILTIN_REF and TFLite Micro bit for bit.
"""
import json
import subprocess

import numpy as np
import pytest

from conftest import assert_no_floating_point, random_inputs, require_board_tools, shared_model
from mcutool import reference
from mcutool.compiler import Options, compile_model, run_build
from mcutool.frontends import load_model

pytestmark = pytest.mark.qemu

INT8_MODELS = ["kws_ref_model.tflite", "ad01_int8.tflite", "hello_world_int8.tflite",
               "micro_speech_quantized.tflite"]
SAMPLES = 5


def validate(model_name: str, board_name: str, out, samples: int = SAMPLES):
    require_board_tools(board_name)
    model = shared_model(model_name)
    compile_model(model, board_name, out, Options())
    graph = load_model(model)
    rng = np.random.default_rng(1234)
    distinct = set()
    for _ in range(samples):
        xs = random_inputs(graph, rng)
        ys, info = run_build(out, [xs[n] for n in graph.inputs])
        want = reference.run(graph, xs)
        for name, y in zip(graph.outputs, ys):
            assert y.dtype == want[name].dtype
            assert np.array_equal(y, want[name]), f"{model_name} on {board_name}: output {name} differs"
            distinct.add(y.tobytes())
        assert info["instructions"] > 0
    assert len(distinct) > 1, "every sample gave the same output: the comparison proves nothing"
    return info


@pytest.mark.parametrize("board", ["stm32f746", "nucleo-l4r5zi"])
@pytest.mark.parametrize("model", INT8_MODELS)
def test_shared_int8_models_bit_exact_on_cortex_m(model, board, tmp_path):
    validate(model, board, tmp_path / "proj")


@pytest.mark.parametrize("model", ["kws_ref_model.tflite", "hello_world_int8.tflite"])
def test_kws_and_hello_world_bit_exact_on_riscv(model, tmp_path):
    validate(model, "rv32-generic", tmp_path / "proj")


def test_hello_world_bit_exact_on_hifive1(tmp_path):
    validate("hello_world_int8.tflite", "hifive1-revb", tmp_path / "proj")


def test_kws_fits_hifive1_with_convolutions_in_place(tmp_path):
    """HiFive1 has 16,384 B of SRAM: KWS's layer-wise 16,000 B arena plus stack did not fit; with its depthwise
    and 1x1 convs in place (8,696 B, tests/test_depthwise_inplace.py) it does, and runs bit-exact.
    (The "does not fit ... by how much" message is tested in test_board_limits.py.)"""
    validate("kws_ref_model.tflite", "hifive1-revb", tmp_path / "proj")
    report = json.loads((tmp_path / "proj" / "report.json").read_text())
    assert report["memory"]["arena_bytes"] == 8_696
    assert report["memory"]["sram_used_bytes"] <= 16_384


def test_kws_firmware_has_no_floating_point(tmp_path):
    board = require_board_tools("stm32f746")
    out = tmp_path / "proj"
    compile_model(shared_model("kws_ref_model.tflite"), "stm32f746", out, Options())
    for elf in ("emulator.elf", "board.elf"):
        assert_no_floating_point(board, out / elf)


def test_report_json_reads_the_elf(tmp_path):
    require_board_tools("stm32f746")
    out = tmp_path / "proj"
    compile_model(shared_model("kws_ref_model.tflite"), "stm32f746", out, Options())
    report = json.loads((out / "report.json").read_text())
    assert report["macs"] == 2656768
    assert report["memory"]["layerwise_peak_bytes"] == 16000
    assert report["memory"]["arena_bytes"] <= 16000 * 1.05
    assert report["memory"]["sram_used_bytes"] >= report["memory"]["arena_bytes"] + report["memory"]["stack_bytes"]
    assert report["flash"]["used_bytes"] > report["flash"]["weights_bytes"]
    assert {layer["kernel"] for layer in report["layers"] if layer["macs"]} == {"tvm"}
    assert report["build"]["objects_sha256"]["model.c.o"]


def test_report_json_gives_each_generated_kernels_code_bytes(tmp_path):
    """layers[].code_bytes: the sizes objdump's symbol table gives for the layer's functions (L_<layer> and
    any L_<layer>_... helper GCC did not inline); None for layers that call a shared runtime kernel."""
    require_board_tools("stm32f746")
    out = tmp_path / "proj"
    compile_model(shared_model("kws_ref_model.tflite"), "stm32f746", out, Options())
    report = json.loads((out / "report.json").read_text())
    table = subprocess.run(["arm-none-eabi-objdump", "-t", str(out / "board.elf")], capture_output=True, text=True,
                           check=True).stdout
    # "<address> <scope> F <section>\t<size> <name>" for functions
    funcs = {ln.split()[-1]: int(ln.split()[-2], 16) for ln in table.splitlines() if " F " in ln}
    layers = {r["name"]: r for r in report["layers"]}
    for name in ("depthwise_conv2d_0", "conv2d_1", "fully_connected_0"):
        own = [f for f in funcs if f == "L_" + name or f.startswith("L_" + name + "_")]
        assert own and layers[name]["code_bytes"] == sum(funcs[f] for f in own) > 0
    assert layers["softmax_0"]["code_bytes"] is None and layers["avg_pool2d_0"]["code_bytes"] is None
    assert all(r["code_bytes"] > 0 for r in report["layers"] if r["kernel"] == "tvm")


def test_same_inputs_give_identical_sources_and_objects(tmp_path):
    require_board_tools("stm32f746")
    reports = []
    for name in ("a", "b"):
        compile_model(shared_model("micro_speech_quantized.tflite"), "stm32f746", tmp_path / name, Options())
        reports.append(json.loads((tmp_path / name / "report.json").read_text()))
    assert (tmp_path / "a" / "model.c").read_bytes() == (tmp_path / "b" / "model.c").read_bytes()
    assert reports[0]["build"]["objects_sha256"] == reports[1]["build"]["objects_sha256"]
