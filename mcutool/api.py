"""The Python API: compile, run, validate and bench return result objects (DESIGN.md §3). The CLI is a thin layer
over these functions; a firmware team's own tests call them (and mcutool.pytest_plugin) in CI:

    import mcutool
    fw = mcutool.compile("model.tflite", board="stm32f746")
    y = fw.run(x)                       # one inference in the board's emulator
    fw.instructions, fw.sram_bytes, fw.flash_bytes
    assert mcutool.validate("model.tflite", board="stm32f746", samples=5).passed
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UserError
from .progress import quiet


def options(*, emit: str = "firmware", build: bool = True, calib: str | None = None, io: str = "semihosting",
            patch="auto", sram_budget: float | None = None, max_overhead: float = 20.0, binarize: str = "auto",
            force: bool = False, input_shapes: dict | None = None, weights: str = "int8",
            flash_budget: int | None = None, activations: str = "int8"):
    """compiler.Options from the API's (and the CLI's) keyword arguments; patch: "auto", "off" or N."""
    from .compiler import Options
    from .schedule.patch import parse_mode
    return Options(emit=emit, build=build, calib=calib, io=io, patch=parse_mode(str(patch)),
                   sram_budget_kib=sram_budget, max_overhead=max_overhead, binarize=binarize, force=force,
                   input_shapes=input_shapes, weights=weights, flash_budget=flash_budget,
                   activations=activations)


@dataclass
class Firmware:
    """A compiled project: its folder and report.json, and one-call runs in the board's emulator."""
    path: Path
    report: dict

    @property
    def board(self) -> str:
        return self.report["board"]

    @property
    def arena_bytes(self) -> int:
        return self.report["memory"]["arena_bytes"]

    @property
    def sram_bytes(self) -> int | None:
        """SRAM of the linked image (.data + .bss, stack reserve included); None when not built."""
        return self.report["memory"].get("sram_used_bytes")

    @property
    def flash_bytes(self) -> int | None:
        return self.report["flash"].get("used_bytes")

    @property
    def instructions(self) -> int | None:
        """Instructions of the last run's inference call (None before the first run)."""
        return (self.report.get("run") or {}).get("instructions")

    @property
    def inputs(self) -> list[dict]:
        """The model's inputs: name, shape, dtype (and scale, zero_point) as the firmware takes them."""
        return self.report["io"]["inputs"]

    @property
    def outputs(self) -> list[dict]:
        return self.report["io"]["outputs"]

    @property
    def input_names(self) -> list[str]:
        return [s["name"] for s in self.report["io"]["inputs"]]

    @property
    def output_names(self) -> list[str]:
        return [s["name"] for s in self.report["io"]["outputs"]]

    def run(self, x, timeout: float = 120.0, port: str | None = None, steps: int | None = None):
        """One inference: `x` an array (one input), a list in input order, or a dict by input name. Returns the
        output array (one output) or a dict by output name. Float models take/give float (host (de)quantizes).
        With `steps` T, each input has a leading axis of T steps of a sequence (a stateful model: the state is
        reset once, then carried across the steps) and so does each output."""
        from .compiler import read_report, run_build
        outputs, _ = run_build(self.path, self._inputs(x), timeout=timeout, port=port, steps=steps)
        self.report = read_report(self.path)
        return outputs[0] if len(outputs) == 1 else dict(zip(self.output_names, outputs))

    def _inputs(self, x) -> list[np.ndarray]:
        if isinstance(x, dict):
            missing = [n for n in self.input_names if n not in x]
            if missing:
                raise UserError(f"the inputs lack {', '.join(missing)}; the model's inputs are "
                                f"{', '.join(self.input_names)}.")
            return [np.asarray(x[n]) for n in self.input_names]
        if isinstance(x, (list, tuple)):
            return [np.asarray(v) for v in x]
        return [np.asarray(x)]

    def random_inputs(self, rng: np.random.Generator) -> list[np.ndarray]:
        """One uniformly random input per model input, over the firmware's integer range."""
        out = []
        for s in self.report["io"]["inputs"]:
            info = np.iinfo(s["dtype"])
            out.append(rng.integers(info.min, info.max + 1, size=s["shape"]).astype(s["dtype"]))
        return out


def _out_dir(model: Path, board: str, out, command: str) -> Path:
    from .compiler import default_out_dir
    return Path(out) if out is not None else default_out_dir(model, board, command)


def compile(model, board: str, out=None, *, progress=quiet, **kwargs) -> Firmware:  # noqa: A001 (mcutool.compile)
    """Compile `model` (.tflite/.onnx path) for `board` into `out` (default build/<model>-<board>/) and build it.
    Keyword arguments: those of `options` (emit, build, calib, io, patch, sram_budget, max_overhead, binarize,
    force, input_shapes)."""
    return _compile(Path(model), board, out, "compile", progress, options(**kwargs))


def _compile(model: Path, board: str, out, command: str, progress, opts, graph=None, quantization=None) -> Firmware:
    from .compiler import compile_model
    folder = _out_dir(model, board, out, command)
    report = compile_model(model, board, folder, opts, progress, graph=graph, quantization=quantization)
    return Firmware(folder, report)


def load(project) -> Firmware:
    """A project compiled before (its folder)."""
    from .compiler import read_report
    return Firmware(Path(project), read_report(Path(project)))


def run(project, x, **kwargs):
    """One inference of the project in `project` (see Firmware.run)."""
    return load(project).run(x, **kwargs)


@dataclass
class Mismatch:
    sample: int
    output: str
    values: int     # how many output values differ
    max_lsb: int    # the largest difference


@dataclass
class Validation:
    """validate's result: every output of every sample compared bit for bit with mcutool's reference."""
    firmware: Firmware
    samples: int
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.mismatches

    @property
    def instructions(self) -> int | None:
        return self.firmware.instructions


def validate(model, board: str, samples: int = 5, seed: int = 0, out=None, *, progress=quiet,
             steps: int | None = None, **kwargs) -> Validation:
    """Compile `model` for `board` (default folder build/<model>-<board>-validate/), run `samples` random
    inputs in the emulator and compare each output bit for bit with the reference (TFLite Micro's arithmetic).
    With `steps` T, each sample is a sequence of T random inputs (state reset before each, every step compared)."""
    from . import reference
    from .binarize import binarize, parse_selection
    from .compiler import firmware_graph
    if samples < 1:
        raise UserError(f"--samples {samples}: validate compares at least one input; give a count >= 1.")
    model = Path(model)
    opts = options(**kwargs)
    graph, quantization = firmware_graph(model, opts)  # quantized once: the firmware's and the reference's graph
    fw = _compile(model, board, out, "validate", progress, opts, graph=graph, quantization=quantization)
    graph, _ = binarize(graph, parse_selection(opts.binarize))  # what the firmware computes
    rng = np.random.default_rng(seed)
    result = Validation(fw, samples)
    for i in range(samples):
        progress(f"validating: sample {i + 1}", i + 1, samples)
        if steps is None:
            xs = fw.random_inputs(rng)
            want = reference.run(graph, dict(zip(graph.inputs, xs)))
        else:
            xs = [np.stack(seq) for seq in zip(*(fw.random_inputs(rng) for _ in range(steps)))]
            want = reference.run_sequence(graph, dict(zip(graph.inputs, xs)))
        ys = fw.run(xs, steps=steps)
        ys = [ys] if len(fw.output_names) == 1 else [ys[n] for n in fw.output_names]
        for name, y in zip(graph.outputs, ys):
            if not np.array_equal(y, want[name]):
                diff = int(np.max(np.abs(y.astype(np.int64) - want[name].astype(np.int64))))
                result.mismatches.append(Mismatch(i, name, int(np.sum(y != want[name])), diff))
    return result


@dataclass
class Bench:
    """bench's result: instructions of one inference in the emulator, memory, and (semihosting builds) the
    instructions of every layer call."""
    firmware: Firmware
    instructions: int
    macs: int
    stack_high_water_bytes: int
    layers: list[dict] | None  # {"name", "op", "instructions"} per layer call; None for a --io uart build

    @property
    def macs_per_instruction(self) -> float:
        return self.macs / self.instructions if self.instructions else 0.0


def bench(model, board: str, out=None, *, progress=quiet, **kwargs) -> Bench:
    """Compile `model` for `board` (default folder build/<model>-<board>-bench/), run one random input and, for a
    semihosting build, the per-layer profiling image."""
    from .compiler import profile_layers
    fw = _compile(Path(model), board, out, "bench", progress, options(**kwargs))
    xs = fw.random_inputs(np.random.default_rng(0))
    progress("running in the emulator")
    fw.run(xs)
    info = fw.report["run"]
    layers = None
    if fw.report.get("io_backend", "semihosting") == "semihosting":
        progress("profiling every layer")
        layers = profile_layers(fw.path, xs)
    return Bench(fw, info["instructions"], fw.report["macs"], info["stack_high_water_bytes"], layers)
