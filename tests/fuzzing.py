"""Fuzzing the importers and the planner with mutated real model files (issue 13), for tests/test_fuzz.py and
benchmarks/fuzz.py.

Seeds are the shared TFLite models and ONNX conformance models (their run-time weights frozen into initializers).
A mutation is one of: truncation, random byte flips, or a structural edit that keeps the file parseable --
out-of-range tensor/buffer indices, wrong shapes and buffer sizes, zero/NaN/inf scales, huge dimensions, bad
attributes. Every case must end in one of:

- "rejected": a UserError, the one-paragraph message the CLI prints (exit 1);
- "planned": import, quantization and planning succeeded (what `compile --no-build` does before generating code);
- "built-equal" (build cases): generated C built with the host gcc (-Wall -Wextra -Werror, ASan/UBSan) whose output
  equals the reference on a random input -- a flipped weight byte is still a valid model.

Anything else is a bug: "crash" (another exception: a traceback), "hang" (over the time limit), "differs".
Each case runs in a worker process with an address-space limit, so a huge dimension cannot take the machine.
"""
from __future__ import annotations

import multiprocessing as mp
import random
import tempfile
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models"
TFLITE_SEEDS = ["hello_world_int8.tflite", "ad01_int8.tflite", "kws_ref_model.tflite",
                "micro_speech_quantized.tflite", "hello_world_float.tflite"]
ONNX_SEEDS = ["test_qlinearconv", "test_basic_conv_with_padding", "test_averagepool_2d_pads",
              "test_maxpool_2d_pads", "test_qlinearmatmul_2D_int8_float32"]
BUILD_SEEDS = ["hello_world_int8.tflite", "micro_speech_quantized.tflite", "ad01_int8.tflite"]  # int8, one I/O
BAD = ("crash", "hang", "differs")
PLAN_TIMEOUT = 20.0   # seconds per import + planning case
BUILD_TIMEOUT = 300.0  # seconds per generate + host build + run case
MEMORY_LIMIT = 4 << 30  # bytes of address space a plan worker may map


@dataclass
class Case:
    seed: str
    mutation: str
    data: bytes
    suffix: str


@dataclass
class Result:
    case: Case
    outcome: str
    message: str = ""


# -- seeds ------------------------------------------------------------------------------------------------------
def _frozen_onnx(name: str) -> bytes:
    """An ONNX conformance model with every input but the first frozen to its test data (an initializer)."""
    import onnx
    from onnx import numpy_helper
    case = SHARED / "onnx_node" / name
    model = onnx.load(case / "model.onnx")
    for i, vi in enumerate(list(model.graph.input)[1:], start=1):
        t = onnx.TensorProto()
        t.ParseFromString((case / "test_data_set_0" / f"input_{i}.pb").read_bytes())
        model.graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(t), vi.name))
        model.graph.input.remove(vi)
    return model.SerializeToString()


def seeds() -> dict[str, bytes]:
    found = {name: (SHARED / name).read_bytes() for name in TFLITE_SEEDS}
    found.update({f"{name}.onnx": _frozen_onnx(name) for name in ONNX_SEEDS})
    return found


# -- mutations --------------------------------------------------------------------------------------------------
def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(len(data))]


def _flip(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4, 16))):
        buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    return bytes(buf)


EXTREME_INTS = (0, -1, -7, 1 << 20, (1 << 31) - 1, -(1 << 31), 65535)
EXTREME_FLOATS = (0.0, float("nan"), float("inf"), float("-inf"), -1.0, 1e38, 1e-45)


def _set(buf: bytearray, pos: int, value, fmt: str) -> None:
    import struct
    size = struct.calcsize(fmt)
    if 0 <= pos and pos + size <= len(buf):
        buf[pos:pos + size] = struct.pack("<" + fmt, value)


def _tflite_structural(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """A field of the flatbuffer changed in place: the file still parses, its content is wrong."""
    import tflite
    buf = bytearray(data)
    model = tflite.Model.GetRootAsModel(buf, 0)
    sub = model.Subgraphs(0)
    tensors = [sub.Tensors(i) for i in range(sub.TensorsLength())]
    kind = rng.choice(("op_index", "buffer_index", "shape", "huge_dim", "buffer_size", "scale", "zero_point",
                       "io_index", "opcode"))
    if kind == "op_index" and sub.OperatorsLength():
        op = sub.Operators(rng.randrange(sub.OperatorsLength()))
        vec = rng.choice((6, 8))  # inputs, outputs
        off = op._tab.Offset(vec)
        if off and op._tab.VectorLen(off):
            _set(buf, op._tab.Vector(off) + 4 * rng.randrange(op._tab.VectorLen(off)),
                 rng.choice((len(tensors), len(tensors) + 100, -2, (1 << 31) - 1)), "i")
    elif kind == "opcode" and sub.OperatorsLength():
        op = sub.Operators(rng.randrange(sub.OperatorsLength()))
        off = op._tab.Offset(4)
        if off:
            _set(buf, op._tab.Pos + off, rng.choice((model.OperatorCodesLength(), 1 << 30)), "I")
    elif kind == "io_index":
        off = sub._tab.Offset(rng.choice((6, 8)))  # subgraph inputs, outputs
        if off and sub._tab.VectorLen(off):
            _set(buf, sub._tab.Vector(off), rng.choice((len(tensors), -5, 1 << 24)), "i")
    elif kind == "buffer_index":
        t = rng.choice(tensors)
        off = t._tab.Offset(8)
        if off:
            _set(buf, t._tab.Pos + off, rng.choice((model.BuffersLength(), model.BuffersLength() + 7, 1 << 31)), "I")
    elif kind in ("shape", "huge_dim"):
        t = rng.choice(tensors)
        off = t._tab.Offset(4)
        if off and t._tab.VectorLen(off):
            value = rng.choice(((1 << 31) - 1, 1 << 20, 46341)) if kind == "huge_dim" else rng.choice(EXTREME_INTS[:3] + (2, 3, 7))
            _set(buf, t._tab.Vector(off) + 4 * rng.randrange(t._tab.VectorLen(off)), value, "i")
    elif kind == "buffer_size":
        with_data = [i for i in range(model.BuffersLength()) if model.Buffers(i).DataLength()]
        if with_data:
            b = model.Buffers(rng.choice(with_data))
            off = b._tab.Offset(4)
            n = b._tab.VectorLen(off)
            _set(buf, b._tab.Vector(off) - 4, rng.choice((n - 1, n // 2, n + 1, n * 4, 0, 1 << 30)), "I")
    elif kind in ("scale", "zero_point"):
        quantized = [t for t in tensors if t.Quantization() is not None and t.Quantization().ScaleLength()]
        if quantized:
            q = rng.choice(quantized).Quantization()
            off = q._tab.Offset(8 if kind == "scale" else 10)
            if off and q._tab.VectorLen(off):
                i = rng.randrange(q._tab.VectorLen(off))
                if kind == "scale":
                    _set(buf, q._tab.Vector(off) + 4 * i, rng.choice(EXTREME_FLOATS), "f")
                else:
                    _set(buf, q._tab.Vector(off) + 8 * i, rng.choice((1 << 40, -1000, 128, -129)), "q")
    return kind, bytes(buf)


def _onnx_structural(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """The protobuf edited through onnx's classes: parseable, with wrong content."""
    import onnx
    model = onnx.ModelProto()
    model.ParseFromString(data)
    g = model.graph
    kind = rng.choice(("init_dims", "init_data", "scale", "input_dim", "node_input", "attribute", "huge_dim",
                       "drop_node"))
    if kind in ("init_dims", "init_data", "scale") and g.initializer:
        t = rng.choice(list(g.initializer))
        if kind == "init_dims" and t.dims:
            t.dims[rng.randrange(len(t.dims))] = rng.choice((0, 1, 2, 3, 1 << 31, -1))
        elif kind == "init_data" and t.raw_data:
            t.raw_data = t.raw_data[:rng.randrange(len(t.raw_data))]
        elif kind == "scale" and t.data_type == onnx.TensorProto.FLOAT:
            arr = onnx.numpy_helper.to_array(t).copy()
            if arr.size:
                arr.reshape(-1)[rng.randrange(arr.size)] = rng.choice(EXTREME_FLOATS)
                t.CopyFrom(onnx.numpy_helper.from_array(arr, t.name))
    elif kind in ("input_dim", "huge_dim") and g.input:
        dims = rng.choice(list(g.input)).type.tensor_type.shape.dim
        if dims:
            d = dims[rng.randrange(len(dims))]
            d.Clear()
            d.dim_value = rng.choice((1 << 31, 1 << 20, 46341)) if kind == "huge_dim" else rng.choice((0, 1, 2, 5))
    elif kind == "node_input" and g.node:
        node = rng.choice(list(g.node))
        if node.input:
            node.input[rng.randrange(len(node.input))] = rng.choice(("missing", node.output[0], ""))
    elif kind == "attribute" and g.node:
        node = rng.choice(list(g.node))
        ints = [a for a in node.attribute if a.ints]
        if ints:
            a = rng.choice(ints)
            a.ints[rng.randrange(len(a.ints))] = rng.choice((0, -1, -3, 1 << 20, 100))
    elif kind == "drop_node" and len(g.node) > 1:
        g.node.remove(g.node[rng.randrange(len(g.node))])
    return kind, model.SerializeToString()


def mutate(seed: str, data: bytes, rng: random.Random) -> Case:
    suffix = ".onnx" if seed.endswith(".onnx") else ".tflite"
    how = rng.choice(("truncate", "flip", "structural", "structural"))
    if how == "truncate":
        return Case(seed, how, _truncate(data, rng), suffix)
    if how == "flip":
        return Case(seed, how, _flip(data, rng), suffix)
    try:
        kind, out = (_onnx_structural if suffix == ".onnx" else _tflite_structural)(data, rng)
    except Exception:  # the seed's own structure is not what the mutator expects: flip bytes instead
        return Case(seed, "flip", _flip(data, rng), suffix)
    return Case(seed, kind, out, suffix)


def weight_flip(seed: str, data: bytes, rng: random.Random) -> Case:
    """A valid model with different weights: bytes flipped inside the largest constant buffer (TFLite)."""
    import tflite
    model = tflite.Model.GetRootAsModel(data, 0)
    buffers = [model.Buffers(i) for i in range(model.BuffersLength())]
    b = max(buffers, key=lambda b: b.DataLength())
    start = b._tab.Vector(b._tab.Offset(4))
    buf = bytearray(data)
    for _ in range(rng.choice((1, 4, 32))):
        buf[start + rng.randrange(b.DataLength())] ^= 1 << rng.randrange(8)
    return Case(seed, "weight_flip", bytes(buf), ".tflite")


def cases(n: int, seed: int = 0) -> list[Case]:
    """n mutated files, spread over the seeds (TFLite and ONNX alike)."""
    rng = random.Random(seed)
    pool = seeds()
    names = sorted(pool)
    return [mutate(name, pool[name], rng) for name in (names[i % len(names)] for i in range(n))]


def build_cases(n: int, seed: int = 0) -> list[Case]:
    rng = random.Random(seed + 1)
    pool = {name: (SHARED / name).read_bytes() for name in BUILD_SEEDS}
    return [weight_flip(name, pool[name], rng) for name in (BUILD_SEEDS[i % len(BUILD_SEEDS)] for i in range(n))]


# -- running a case (in a worker process) -----------------------------------------------------------------------
def _write(case: Case, folder: Path) -> Path:
    path = folder / f"fuzz{case.suffix}"
    path.write_bytes(case.data)
    return path


def _clear(message: str) -> bool:
    """A UserError's message is what the CLI prints: one paragraph, no traceback, no raw tool output."""
    return bool(message.strip()) and "Traceback" not in message and len(message) < 4000


def plan_case(case: Case) -> tuple[str, str]:
    from mcutool.boards import load_board
    from mcutool.compiler import Options, plan_model
    from mcutool.errors import UserError
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(case, Path(tmp))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                plan_model(path, load_board("stm32f746"), Options(calib="random", build=False))
        except UserError as exc:
            return ("rejected", str(exc)) if _clear(str(exc)) else ("crash", f"unclear message: {exc}")
        except Exception:  # noqa: BLE001 -- what the fuzzer looks for
            return "crash", traceback.format_exc()
    return "planned", ""


def build_case(case: Case) -> tuple[str, str]:
    """Generate the library, build it with the host gcc, run a random input, compare with the reference."""
    import subprocess
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from host_build import build_host_program
    from mcutool import reference
    from mcutool.binarize import binarize, parse_selection
    from mcutool.compiler import Options, compile_model, firmware_graph
    from mcutool.errors import UserError
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = _write(case, tmp)
        try:
            compile_model(path, "stm32f746", tmp / "lib", Options(emit="library"))
            graph, _ = binarize(firmware_graph(path, Options())[0], parse_selection("auto"))
        except UserError as exc:
            return ("rejected", str(exc)) if _clear(str(exc)) else ("crash", f"unclear message: {exc}")
        except Exception:  # noqa: BLE001
            return "crash", traceback.format_exc()
        try:
            exe = build_host_program(tmp / "lib", tmp / "run")  # the runtime compiled once per worker (host_build)
        except subprocess.CalledProcessError as exc:
            return "crash", f"host build failed: {exc.stderr[-2000:]}"
        t = graph.tensor(graph.inputs[0])
        x = np.random.default_rng(len(case.data)).integers(-128, 128, size=t.shape).astype(t.dtype)
        x.tofile(tmp / "x.bin")
        done = subprocess.run([str(exe), str(tmp / "x.bin"), str(tmp / "y.bin")], capture_output=True, text=True,
                              timeout=60)
        if done.returncode != 0:
            return "crash", f"host program exited {done.returncode}: {done.stderr[-2000:]}"
        try:  # what validate compares with; it refuses some models compile accepts (see the report)
            want = reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]]
        except UserError as exc:
            return ("rejected", f"by the reference: {exc}") if _clear(str(exc)) else ("crash", str(exc))
        got = np.fromfile(tmp / "y.bin", dtype=want.dtype).reshape(want.shape)
        if not np.array_equal(got, want):
            return "differs", f"{int(np.sum(got != want))} of {want.size} outputs differ from the reference"
    return "built-equal", ""


def _limit_memory() -> None:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


class Runner:
    """Cases run one at a time in a worker process (restarted after a hang or a dead worker)."""

    def __init__(self, fn, timeout: float, limit_memory: bool):
        self.fn, self.timeout, self.limit = fn, timeout, limit_memory
        self.pool = None

    def _start(self):
        ctx = mp.get_context("fork")
        self.pool = ctx.Pool(1, initializer=_limit_memory if self.limit else None)

    def run(self, case: Case) -> Result:
        if self.pool is None:
            self._start()
        try:
            outcome, message = self.pool.apply_async(self.fn, (case,)).get(self.timeout)
        except mp.TimeoutError:
            self.close()
            return Result(case, "hang", f"no result after {self.timeout:.0f} s")
        except Exception as exc:  # noqa: BLE001 -- the worker died (a signal) or could not return
            self.close()
            return Result(case, "crash", f"worker failed: {type(exc).__name__}: {exc}")
        return Result(case, outcome, message)

    def close(self):
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None


def run_all(items: list[Case], fn, timeout: float, limit_memory: bool, on_result=None) -> list[Result]:
    runner = Runner(fn, timeout, limit_memory)
    results = []
    try:
        for case in items:
            results.append(runner.run(case))
            if on_result:
                on_result(results[-1], len(results), len(items))
    finally:
        runner.close()
    return results


def counts(results: list[Result]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in results:
        out[r.outcome] = out.get(r.outcome, 0) + 1
    return dict(sorted(out.items()))
