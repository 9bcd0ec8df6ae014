"""The issue-6 binarized CNN in firmware (must-show 1, boards part): built for hifive1-revb (16 KB SRAM: the
first layer writes packed bits, its 32 KB int8 output never exists) and stm32f746, run in QEMU, outputs equal
mcutool.reference's bit for bit (int8 ==). The reference's binary semantics are checked against their
definitions and onnxruntime in tests/test_binarize.py.
"""
import numpy as np
import onnx
import pytest

from bnn_builder import build_bnn, float_to_int8_graph, random_inputs
from mcutool import reference as ref
from mcutool.binarize import binarize
from mcutool.compiler import Options, compile_model, run_build
from test_boards_qemu import float_instructions, float_symbols
from test_firmware_qemu import require_board_tools

pytestmark = pytest.mark.qemu


# The network (channel counts multiples of 32: the bit-lane kernels) and one whose channel counts are
# not (partial packed words: the XNOR/popcount kernels, bit and int8 output, and a 24-channel first layer).
NETWORKS = {"issue": None, "odd_channels": (24, 40, 24, 48, 40)}


@pytest.fixture(scope="module", params=list(NETWORKS))
def bnn(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("bnn") / "bnn.onnx"
    channels = NETWORKS[request.param]
    onnx.save(build_bnn(seed=0) if channels is None else build_bnn(seed=1, channels=channels), path)
    return request.param, path, float_to_int8_graph(path, random_inputs(64, 99))


@pytest.mark.parametrize("board", ["hifive1-revb", "stm32f746"])
def test_binarized_cnn_runs_bit_exact_on_the_board(bnn, board, tmp_path):
    require_board_tools(board)
    network, path, g8 = bnn
    report = compile_model(path, board, tmp_path / "proj", Options(binarize="auto"), graph=g8)
    model_c = (tmp_path / "proj" / "model.c").read_text()
    used = {f for f in ("mcu_binary_conv2d_bitslice_s1(", "mcu_binary_conv2d_bitslice_s1_s8(",
                        "mcu_binary_conv2d_s1(", "mcu_binary_conv2d_s1_s8(") if f in model_c}
    assert used == ({"mcu_binary_conv2d_bitslice_s1(", "mcu_binary_conv2d_bitslice_s1_s8("} if network == "issue"
                    else {"mcu_binary_conv2d_s1(", "mcu_binary_conv2d_s1_s8("})
    assert report["memory"]["sram_used_bytes"] <= report["memory"]["sram_limit_bytes"]
    assert sum(r["op"].startswith("binary_") for r in report["layers"]) == 8
    gb, _ = binarize(g8, "auto")
    q = g8.tensor(g8.inputs[0]).quant
    x = random_inputs(3, 21)
    xq = np.clip(np.round(x / q.scale[0]) + q.zero_point[0], -128, 127).astype(np.int8)
    outputs = set()
    for i in range(len(xq)):
        ys, info = run_build(tmp_path / "proj", [xq[i:i + 1]])
        want = ref.run(gb, {gb.inputs[0]: xq[i:i + 1]})[gb.outputs[0]]
        assert ys[0].dtype == want.dtype and np.array_equal(ys[0], want), f"sample {i} differs on {board}"
        outputs.add(ys[0].tobytes())
        assert info["instructions"] > 0
    assert len(outputs) == 3
    board_obj = require_board_tools(board)
    for elf in ("board.elf", "emulator.elf"):  # (the images keep weights in .text: disassemble code objects)
        assert float_symbols(board_obj, tmp_path / "proj" / elf) == []
    objects = sorted((tmp_path / "proj" / "obj" / "app").rglob("*binary*.o")) + [tmp_path / "proj/obj/app/model.c.o"]
    assert len(objects) == 6  # 5 binary kernel files + model
    for obj in objects:
        assert float_instructions(board_obj, obj) == [], obj.name
