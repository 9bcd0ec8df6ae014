"""mcutool inspect's figures against hand-derived numbers, and a built wheel that works outside the checkout."""
import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from conftest import shared_model

ROOT = Path(__file__).resolve().parents[1]

# DESIGN.md §4 / §6: MACs from the layer shapes; layer-wise peaks derived by hand (largest in+out pair).
EXPECTED = {
    "kws_ref_model.tflite": (2656768, 16000),
    "ad01_int8.tflite": (264192, 768),
    "micro_speech_quantized.tflite": (336000, 5960),
    "hello_world_int8.tflite": (288, 32),
}


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_inspect_json_macs_and_layerwise_peak(model):
    done = subprocess.run([sys.executable, "-m", "mcutool", "inspect", str(shared_model(model)), "--json"],
                          capture_output=True, text=True, check=True)
    summary = json.loads(done.stdout)
    macs, peak = EXPECTED[model]
    assert summary["macs"] == macs
    assert summary["layerwise_peak_bytes"] == peak


def test_inspect_table_and_memory_profile():
    done = subprocess.run([sys.executable, "-m", "mcutool", "inspect", str(shared_model("kws_ref_model.tflite")),
                           "--memory"], capture_output=True, text=True, check=True)
    assert "2,656,768" in done.stdout and "16,000" in done.stdout and "#" in done.stdout


def test_wheel_ships_its_data_and_compiles_outside_the_checkout(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(tmp_path / "wh")],
                   check=True, capture_output=True, cwd=tmp_path)
    [wheel] = (tmp_path / "wh").glob("mcutool-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=True)  # dependencies from this environment
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True)
    where = subprocess.run([str(py), "-c", "import mcutool.paths as p; print(p.data_dir('templates'))"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip()
    assert str(env_dir) in where, f"templates came from {where}, not the installed wheel"
    done = subprocess.run([str(py), "-m", "mcutool", "compile", str(shared_model("hello_world_int8.tflite")),
                           "--board", "stm32f746", "--no-build", "-o", str(tmp_path / "proj")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for name in ("model.c", "main.c", "Makefile", "emulator.ld", "runtime/mcu_kernels.h",
                 "firmware/include/mcu_io.h"):
        assert (tmp_path / "proj" / name).is_file(), name
