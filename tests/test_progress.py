"""Progress a person can follow (issue 13): a bar rewritten in place on a terminal, one plain line per step or
item in a log; the CLI's compile and validate show kernel generation per layer, the build and every sample."""
import io
import subprocess
import sys

from conftest import require_board_tools, shared_model
from mcutool.progress import Progress


def test_log_gets_plain_lines():
    out = io.StringIO()
    p = Progress(out, tty=False)
    p("importing")
    for i in range(1, 4):
        p(f"generating kernels: layer{i}", i, 3)
    p("building")
    assert out.getvalue().splitlines() == ["  importing ...", "  [1/3] generating kernels: layer1",
                                           "  [2/3] generating kernels: layer2", "  [3/3] generating kernels: layer3",
                                           "  building ..."]
    assert "\r" not in out.getvalue()


def test_terminal_gets_one_bar_rewritten_in_place():
    out = io.StringIO()
    p = Progress(out, tty=True)
    for i in range(1, 5):
        p(f"validating: sample {i}", i, 4)
    p("done")
    text = out.getvalue()
    lines = text.split("\n")
    assert lines[0].count("\r") == 4 and "[" + "#" * 30 + "] 4/4 validating: sample 4" in lines[0]
    assert "] 2/4 " in lines[0] and "#" * 15 + "." * 15 in lines[0]  # half way: half the bar
    assert lines[1] == "  done ..."


def test_cli_validate_shows_layers_build_and_samples(tmp_path):
    require_board_tools("stm32f746")
    done = subprocess.run([sys.executable, "-m", "mcutool", "validate", str(shared_model("hello_world_int8.tflite")),
                           "--board", "stm32f746", "--samples", "3", "-o", str(tmp_path / "v")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    err = done.stderr.splitlines()
    for line in ("  [1/3] generating kernels: fully_connected_0", "  [3/3] generating kernels: fully_connected_2",
                 "  building ...", "  [1/3] validating: sample 1", "  [3/3] validating: sample 3"):
        assert line in err, done.stderr
    assert err.index("  building ...") < err.index("  [1/3] validating: sample 1")
