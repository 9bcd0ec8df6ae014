"""--io uart: firmware that talks framed tensors over the board's UART, run in QEMU with no semihosting (issue 7,
must-show 1), and the host's serial-port path (`mcutool run --port`) through a pty QEMU serves.

Expected outputs come from tflite-runtime's BUILTIN_REF kernels (the oracle of DESIGN.md §6) or from
mcutool.reference, which tests/test_reference_models.py proves equal to them bit for bit.
"""
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import random_inputs, require_board_tools, shared_model
from mcutool import reference
from mcutool.boards import load_board
from mcutool.compiler import Options, compile_model, run_build
from mcutool.emulate import frames
from mcutool.emulate.qemu import qemu_command
from mcutool.emulate.serial import Session, qemu_serial
from mcutool.errors import UserError
from mcutool.frontends import load_model

sys.path.insert(0, str(Path(__file__).parent))
from tflite_builder import RefInterpreter  # noqa: E402

pytestmark = pytest.mark.qemu

F405_MODELS = ["kws_ref_model.tflite", "ad01_int8.tflite", "hello_world_int8.tflite", "micro_speech_quantized.tflite"]
SAMPLES = 3


def compile_uart(model: Path, board: str, out: Path) -> dict:
    require_board_tools(board)
    return compile_model(model, board, out, Options(io="uart"))


@pytest.fixture(scope="module")
def hello_f405(tmp_path_factory):
    out = tmp_path_factory.mktemp("uart") / "hello"
    compile_uart(shared_model("hello_world_int8.tflite"), "stm32f405", out)
    return out


def test_uart_runs_start_qemu_without_any_semihosting_option():
    board = load_board("stm32f405")
    command = qemu_command(board, "emulator.elf", io="uart", serial="unix:/tmp/x.sock")
    assert not [a for a in command if "semihosting" in a]
    assert command[command.index("-serial") + 1] == "unix:/tmp/x.sock"
    assert command[command.index("-M") + 1] == "netduinoplus2"


@pytest.mark.parametrize("model", F405_MODELS)
def test_shared_int8_models_bit_exact_over_uart_on_f405(model, tmp_path):
    path = shared_model(model)
    report = compile_uart(path, "stm32f405", tmp_path / "proj")
    assert report["io_backend"] == "uart"
    graph = load_model(path)
    rng = np.random.default_rng(99)
    distinct = set()
    for _ in range(SAMPLES):
        xs = random_inputs(graph, rng)
        ys, info = run_build(tmp_path / "proj", [xs[n] for n in graph.inputs])
        want = reference.run(graph, xs)
        for name, y in zip(graph.outputs, ys):
            assert y.dtype == want[name].dtype and np.array_equal(y, want[name]), f"{model}: {name} differs"
            distinct.add(y.tobytes())
        assert info["instructions"] > 0 and info["emulator"] == "qemu-system-arm -M netduinoplus2"
    assert len(distinct) > 1, "every sample gave the same output: the comparison proves nothing"


def test_validate_cli_with_io_uart_is_bit_exact_on_f405(tmp_path):
    require_board_tools("stm32f405")
    done = subprocess.run([sys.executable, "-m", "mcutool", "validate", str(shared_model("ad01_int8.tflite")),
                           "--board", "stm32f405", "--io", "uart", "--samples", "2", "-o", str(tmp_path / "p")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "bit-exact: 2 of 2" in done.stdout


def test_clock_waits_time_out_in_qemu_and_the_firmware_still_serves(hello_f405):
    """netduinoplus2's RCC and flash interface read 0: the first clock wait (FLASH_ACR latency, step 4) times
    out, the core stays on its 16 MHz reset clock, and the harness reports it instead of hanging."""
    board = load_board("stm32f405")
    with qemu_serial(board, hello_f405 / "emulator.elf") as link:
        ready = Session(link, board).wait_ready()
    assert ready.int("clock_failed_step") == 4
    assert ready.int("clock_hz") == 16_000_000
    assert ready.int("inputs") == 1 and ready.int("outputs") == 1


def test_a_damaged_input_frame_is_rejected_and_the_next_one_served(hello_f405):
    board = load_board("stm32f405")
    x = np.array([[57]], dtype=np.int8)
    want = RefInterpreter(shared_model("hello_world_int8.tflite"))(x)[0]
    good = frames.encode(frames.INPUT, x.tobytes())
    bad = bytearray(good)
    bad[9] ^= 0x40  # the payload byte: the CRC no longer matches
    with qemu_serial(board, hello_f405 / "emulator.elf") as link:
        session = Session(link, board)
        session.wait_ready()
        link.write(b"noise" + bytes(bad) + good)
        with pytest.raises(UserError, match="frame=crc"):
            session.receive(timeout=30)
        raw, records = session.receive(timeout=30)
    assert np.frombuffer(raw, np.int8).reshape(want.shape).tolist() == want.tolist()
    assert [r.kind for r in records] == ["count", "stack"]


def test_a_stray_semihosting_call_faults_and_is_reported_over_uart(hello_f405, tmp_path):
    """Without -semihosting, QEMU turns the BKPT 0xAB of a semihosting call into a HardFault; the fault report
    arrives as 'T' frames and the firmware ends with an 'X' frame."""
    project = tmp_path / "stray"
    subprocess.run(["cp", "-r", str(hello_f405), str(project)], check=True)
    main = (project / "main.c").read_text()
    main = main.replace('#include "mcu_board.h"', '#include "mcu_board.h"\n#include "mcu_io.h"')
    main = main.replace('    mcu_report_begin("ready");',
                        '    mcu_semihost_call(0x04, (void *)"stray");\n    mcu_report_begin("ready");', 1)
    (project / "main.c").write_text(main)
    done = subprocess.run(["make", "-C", str(project), "emulator.elf"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with pytest.raises(UserError, match=r"HardFault .* in mcu_semihost_call"):
        run_build(project, [np.array([[1]], dtype=np.int8)])


@pytest.mark.parametrize("board", ["stm32f746", "nucleo-l4r5zi", "hifive1-revb"])
def test_other_boards_uart_builds_run_in_qemu_and_link_their_board_uart(board, tmp_path):
    """The emulator images use the machine's own UART (CMSDK UART0 on mps2, UART0 on sifive_e); the board images
    link the real consoles' drivers (F746 USART1, L4R5 LPUART1, HiFive1 UART0): those are tested only by
    compiling, their register writes only against the reference manuals."""
    path = shared_model("hello_world_int8.tflite")
    compile_uart(path, board, tmp_path / "p")
    graph = load_model(path)
    xs = {graph.inputs[0]: np.array([[-100]], dtype=np.int8)}
    ys, _ = run_build(tmp_path / "p", [xs[graph.inputs[0]]])
    assert np.array_equal(ys[0], reference.run(graph, xs)[graph.outputs[0]])
    b = load_board(board)
    nm = subprocess.run([b.toolchain.tool("nm"), str(tmp_path / "p" / "board.elf")], capture_output=True, text=True)
    assert " mcu_uart_init" in nm.stdout and " mcu_frame_send" in nm.stdout
    assert " mcu_semihost_call" not in nm.stdout and " mcu_file_open" not in nm.stdout  # no semihosting left
    config = (tmp_path / "p" / "firmware" / "config" / "board" / "mcu_board_config.h").read_text()
    assert f"MCU_UART_{b.uart.kind.upper()} 1" in config and f"0x{b.uart.base:08X}u" in config


def test_hifive1_pll_set_up_completes_in_qemu(tmp_path):
    """QEMU's sifive_e models the PRCI (ready and lock bits read set), so every clock step runs: 320 MHz."""
    board = load_board("hifive1-revb")
    compile_uart(shared_model("hello_world_int8.tflite"), "hifive1-revb", tmp_path / "p")
    with qemu_serial(board, tmp_path / "p" / "emulator.elf") as link:
        ready = Session(link, board).wait_ready()
    assert ready.int("clock_failed_step") == 0 and ready.int("clock_hz") == 320_000_000


def test_run_port_speaks_to_a_serial_device_qemu_serves_through_a_pty(hello_f405, tmp_path):
    """`mcutool run --port` opens a character device raw with termios, as it would /dev/ttyACM0; here the device
    is the pty QEMU (-serial pty) gives its netduinoplus2 USART1. The only hardware-port path tested here."""
    board = load_board("stm32f405")
    command = qemu_command(board, (hello_f405 / "emulator.elf").resolve(), io="uart", serial="pty")
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        line = proc.stdout.readline()
        found = re.search(r"(/dev/pts/\d+)", line)
        assert found, f"QEMU did not report its pty: {line!r}"
        x = np.array([[-77]], dtype=np.int8)
        np.save(tmp_path / "x.npy", x)
        time.sleep(0.2)
        done = subprocess.run([sys.executable, "-m", "mcutool", "run", str(hello_f405), "--input",
                               str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"), "--port", found.group(1)],
                              capture_output=True, text=True, timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert done.returncode == 0, done.stderr
    want = RefInterpreter(shared_model("hello_world_int8.tflite"))(x)[0]
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.int8 and y.tolist() == want.tolist()
    assert "instructions per inference" in done.stdout


def test_run_port_on_a_semihosting_build_says_to_rebuild_with_uart(tmp_path):
    require_board_tools("stm32f405")
    compile_model(shared_model("hello_world_int8.tflite"), "stm32f405", tmp_path / "p", Options())
    with pytest.raises(UserError, match="--io uart"):
        run_build(tmp_path / "p", [np.array([[1]], dtype=np.int8)], port="/dev/null")


def test_a_board_without_a_uart_refuses_io_uart(tmp_path):
    with pytest.raises(UserError, match=r"rv32-generic has no UART .*\[uart\]"):
        compile_model(shared_model("hello_world_int8.tflite"), "rv32-generic", tmp_path / "p", Options(io="uart"))
