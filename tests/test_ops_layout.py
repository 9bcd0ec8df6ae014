"""The operator layout (README "One operator in one place"): every IR op kind an importer can produce is one
registered operator module with a reference, op modules import no later stage, and every runtime kernel an op
names is declared in runtime/mcu_kernels.h and defined in runtime/."""
import ast
import re
from pathlib import Path

from mcutool import ir
from mcutool.ops import OPS

OPS_DIR = Path(__file__).resolve().parents[1] / "mcutool" / "ops"
RUNTIME = Path(__file__).resolve().parents[1] / "runtime"


def test_every_ir_kind_but_the_schedulers_is_a_registered_operator():
    scheduler_kinds = {"patch_stage", "unsupported"}  # not operators: a patched stage, a layer shown by inspect
    assert set(ir.OP_ATTRS) - scheduler_kinds == set(OPS)
    for kind, spec in OPS.items():
        assert ir.OP_ATTRS[kind] is spec.attrs
        assert callable(spec.reference), kind


def test_operator_modules_import_no_later_stage():
    forbidden = re.compile(r"^mcutool\.(codegen|schedule|emulate|compiler|cli|frontends|quantize|binarize)\b")
    for path in OPS_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not forbidden.match(node.module), f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not forbidden.match(alias.name), f"{path.name} imports {alias.name}"


def test_runtime_kernels_named_by_operators_exist():
    header = (RUNTIME / "mcu_kernels.h").read_text()
    sources = "".join(p.read_text() for p in RUNTIME.glob("*.c"))
    named = {m for path in OPS_DIR.glob("*.py") for m in re.findall(r'"(mcu_\w+_s(?:8|16|32))"', path.read_text())}
    assert len(named) >= 12
    for fn in sorted(named):
        assert re.search(rf"\bmcu_status {fn}\(", header), f"{fn} is not declared in runtime/mcu_kernels.h"
        defined = rf"\bmcu_status {fn}\(|\b[A-Z_]+_KERNEL\({fn},"  # written out, or a macro instantiation
        assert re.search(defined, sources), f"{fn} is not defined in runtime/*.c"


def test_readme_operator_table_is_generated_from_the_code():
    import importlib.util
    spec = importlib.util.spec_from_file_location("op_table", OPS_DIR.parents[1] / "benchmarks" / "op_table.py")
    op_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(op_table)
    readme = (OPS_DIR.parents[1] / "README.md").read_text()
    block = readme.split(op_table.BEGIN, 1)[1].split(op_table.END, 1)[0]
    assert block.strip() == op_table.table().strip(), "run: python benchmarks/op_table.py --write-readme"
    rows = op_table.support()
    assert len(rows) == 100
    assert ("CONV_2D", "conv2d", "yes", "") in rows or ("CONV_2D", "conv2d", "yes", "yes") in rows
