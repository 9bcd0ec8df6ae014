"""One-op int8 TFLite models checked three ways, for operators added one module at a time (mcutool/ops/<op>.py):

  1. mcutool's importer + reference (`mcutool.reference.run`) equals the tflite-micro interpreter (or, where
     TFLite Micro lacks the kernel, tflite-runtime's BUILTIN_REF; the case says which);
  2. the op's runtime/ kernel, called as the generated model.c calls it (runtime_params.c_call: several inputs
     and several outputs), equals the reference -- all cases in one host C harness, -Wall -Wextra -Werror,
     ASan/UBSan, every buffer malloc'ed to its exact size.

A case is a ModelBuilder holding one op whose graph inputs are its data inputs (constants are constants)."""
from __future__ import annotations

import os
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from conftest import require_tool
from tflite_builder import ModelBuilder, RefInterpreter

from mcutool import reference
from mcutool.codegen import runtime_params as rp
from mcutool.frontends.tflite import load_tflite
from mcutool.ir import Graph

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "runtime"
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-std=c99", "-fsanitize=address,undefined",
          "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


@dataclass
class OpCase:
    name: str
    builder: ModelBuilder
    oracle: str = "micro"            # "micro": the tflite-micro interpreter; "ref": tflite-runtime BUILTIN_REF
    runs: int = 12
    seed: int = 0
    graph: Graph | None = None
    inputs: list[list[np.ndarray]] = field(default_factory=list)


def one_op_model(opname, in_shapes, out_shapes, consts=(), options=None, const_first=False,
                 in_q=(0.05, -3), out_q=None, dtype="int8", **fields) -> ModelBuilder:
    """A model of one op on `dtype` (int8, or int16 with zero point 0): data inputs x0.. (quantization in_q),
    int32 constant inputs c0.. after the data inputs (or first), outputs y0.. (out_q, default in_q);
    `options`/`fields`: its builtin options."""
    b = ModelBuilder()
    if dtype == "int16":
        in_q, out_q = (in_q[0], 0), (out_q[0], 0) if out_q else None
    out_q = out_q or in_q
    xs = [b.tensor(f"x{i}", s, dtype, scale=in_q[0], zero_point=in_q[1]) for i, s in enumerate(in_shapes)]
    cs = [b.const(f"c{i}", np.asarray(c, dtype=np.int32)) for i, c in enumerate(consts)]
    ys = [b.tensor(f"y{i}", s, dtype, scale=out_q[0], zero_point=out_q[1]) for i, s in enumerate(out_shapes)]
    b.op(opname, cs + xs if const_first else xs + cs, ys, options, **fields)
    b.inputs, b.outputs = xs, ys
    return b


def random_runs(graph: Graph, runs: int, seed: int) -> list[list[np.ndarray]]:
    """Uniform inputs over each input's integer range, the two extremes first."""
    rng = np.random.default_rng(seed)
    ts = [graph.tensor(n) for n in graph.inputs]
    info = [np.iinfo(t.dtype) for t in ts]
    out = [[np.full(t.shape, i.min, t.dtype) for t, i in zip(ts, info)],
           [np.full(t.shape, i.max, t.dtype) for t, i in zip(ts, info)]]
    out += [[rng.integers(i.min, i.max + 1, size=t.shape).astype(t.dtype) for t, i in zip(ts, info)]
            for _ in range(runs - 2)]
    return out


def oracle_outputs(case: OpCase, path: Path, run: list[np.ndarray]) -> list[np.ndarray]:
    if case.oracle == "ref":
        return RefInterpreter(path)(*run)
    from tflite_micro.python.tflite_micro import runtime
    micro = runtime.Interpreter.from_file(str(path))
    for i, x in enumerate(run):
        micro.set_input(x, i)
    micro.invoke()
    return [micro.get_output(i) for i in range(len(case.builder.outputs))]


def check_reference(case: OpCase, tmp: Path) -> int:
    """Import the case's model, run the reference and the oracle on its inputs; assert equality. Returns the
    number of outputs compared."""
    path = tmp / f"{case.name}.tflite"
    case.builder.write(path)
    case.graph = load_tflite(path)
    case.inputs = case.inputs or random_runs(case.graph, case.runs, case.seed)
    compared = 0
    for run in case.inputs:
        want = oracle_outputs(case, path, run)
        got = reference.run(case.graph, dict(zip(case.graph.inputs, run)))
        for name, w in zip(case.graph.outputs, want):
            g = got[name]
            assert g.dtype == w.dtype and g.shape == tuple(w.shape), (case.name, name, g.shape, w.shape)
            assert np.array_equal(g, w), f"{case.name}: output {name!r} differs from the {case.oracle} oracle"
            compared += 1
    return compared


def harness_source(cases: list[OpCase]) -> str:
    """One C program: case i's op called through runtime_params (the generated model's call) on in[] / out[]."""
    defs, table = [], []
    for i, c in enumerate(cases):
        (op,) = c.graph.ops
        prefix = f"C{i}"
        kp = rp.kernel_params(c.graph, op)
        defs.append(rp.c_definitions(kp, prefix))
        ins = [f"in[{k}]" for k in range(kp.num_inputs - len(kp.const_inputs))]  # constants: the call adds them
        outs = [f"out[{k}]" for k in range(len(op.outputs))]
        call = rp.c_call(kp, prefix, ins, outs, status="st")
        defs.append(f"static mcu_status run_{prefix}(int8_t *const *in, int8_t *const *out)\n"
                    f"{{\n    mcu_status st;\n    {call}\n    return st;\n}}\n")
        in_sizes = [c.graph.tensor(n).nbytes for n in op.inputs if not c.graph.tensor(n).is_const]
        out_sizes = [c.graph.tensor(n).nbytes for n in op.outputs]
        table.append(f"    {{run_{prefix}, {len(in_sizes)}, {{{', '.join(map(str, in_sizes))}}}, "
                     f"{len(out_sizes)}, {{{', '.join(map(str, out_sizes))}}}}},")
    return """#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "mcu_kernels.h"

""" + "\n".join(defs) + """
typedef struct {
    mcu_status (*run)(int8_t *const *in, int8_t *const *out);
    int num_inputs;
    long in_size[16];
    int num_outputs;
    long out_size[16];
} harness_case;

static const harness_case cases[] = {
""" + "\n".join(table) + """
};

int main(int argc, char **argv)
{
    FILE *fi, *fo;
    int32_t idx;
    if (argc != 3 || (fi = fopen(argv[1], "rb")) == NULL || (fo = fopen(argv[2], "wb")) == NULL) {
        return 2;
    }
    while (fread(&idx, sizeof idx, 1, fi) == 1) {
        const harness_case *c = &cases[idx];
        int8_t *in[16], *out[16];
        int k;
        for (k = 0; k < c->num_inputs; k++) {
            in[k] = (int8_t *)malloc((size_t)c->in_size[k]);
            if (in[k] == NULL || fread(in[k], 1, (size_t)c->in_size[k], fi) != (size_t)c->in_size[k]) {
                return 3;
            }
        }
        for (k = 0; k < c->num_outputs; k++) {
            out[k] = (int8_t *)malloc((size_t)c->out_size[k]);
            if (out[k] == NULL) {
                return 3;
            }
        }
        if (c->run(in, out) != MCU_OK) {
            fprintf(stderr, "case %d: kernel status not MCU_OK\\n", (int)idx);
            return 4;
        }
        for (k = 0; k < c->num_outputs; k++) {
            fwrite(out[k], 1, (size_t)c->out_size[k], fo);
            free(out[k]);
        }
        for (k = 0; k < c->num_inputs; k++) {
            free(in[k]);
        }
    }
    fclose(fi);
    fclose(fo);
    return 0;
}
"""


def run_kernels(cases: list[OpCase], tmp: Path) -> dict[str, list[list[np.ndarray]]]:
    """Every case's runtime kernel on every run of its inputs: case name -> per run, the outputs."""
    gcc = require_tool("gcc")
    (tmp / "harness.c").write_text(harness_source(cases))
    sources = sorted(str(p) for p in RUNTIME.glob("*.c") if '#include "mcu_kernels.h"' in p.read_text())
    proc = subprocess.run([gcc, *CFLAGS, "-I", str(RUNTIME), str(tmp / "harness.c"), *sources, "-o",
                           str(tmp / "harness")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-6000:]
    records = bytearray()
    for i, c in enumerate(cases):
        for run in c.inputs:
            records += struct.pack("<i", i) + b"".join(np.ascontiguousarray(x).tobytes() for x in run)
    (tmp / "in.bin").write_bytes(bytes(records))
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1")
    proc = subprocess.run([str(tmp / "harness"), str(tmp / "in.bin"), str(tmp / "out.bin")], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = (tmp / "out.bin").read_bytes()
    results, pos = {}, 0
    for c in cases:
        per_run = []
        for _ in c.inputs:
            outs = []
            for n in c.graph.ops[0].outputs:
                t = c.graph.tensor(n)
                outs.append(np.frombuffer(data[pos:pos + t.nbytes], dtype=t.dtype).reshape(t.shape))
                pos += t.nbytes
            per_run.append(outs)
        results[c.name] = per_run
    assert pos == len(data)
    return results


def check_kernels(cases: list[OpCase], tmp: Path) -> None:
    """The runtime kernels equal the reference on every case's inputs (check_reference has run first)."""
    results = run_kernels(cases, tmp)
    for c in cases:
        for run, got in zip(c.inputs, results[c.name]):
            want = reference.run(c.graph, dict(zip(c.graph.inputs, run)))
            for name, g in zip(c.graph.ops[0].outputs, got):
                assert np.array_equal(g, want[name]), f"{c.name}: kernel output {name!r} differs from the reference"
