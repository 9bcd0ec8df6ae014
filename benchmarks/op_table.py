"""The README's operator table, generated from the code: every TFLite builtin that TFLite Micro registers
(benchmarks/tflm_builtins.txt), the IR op mcutool's TFLite importer makes of it (mcutool.frontends.tflite), and
the activation dtypes that op's firmware runs (mcutool.ops registry).

    python benchmarks/op_table.py                     # print the table and the counts
    python benchmarks/op_table.py --write-readme      # replace the table in README.md
    python benchmarks/op_table.py --refresh-builtins  # re-read the builtin list from the tflite-micro wheel
"""
from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILTINS = Path(__file__).with_name("tflm_builtins.txt")
BEGIN, END = "<!-- operator table: python benchmarks/op_table.py --write-readme -->", "<!-- end of operator table -->"


def tflm_builtins() -> list[str]:
    return [line.strip() for line in BUILTINS.read_text().splitlines() if line.strip() and not line.startswith("#")]


def support() -> list[tuple[str, str, str, str]]:
    """(builtin, IR op, int8, int16) per TFLite Micro builtin."""
    import mcutool  # noqa: F401  (registers the operators)
    from mcutool.frontends.tflite import builtin_kinds
    from mcutool.ops import OPS

    kinds = builtin_kinds()
    rows = []
    for name in tflm_builtins():
        kind = kinds.get(name)
        if kind is None:
            rows.append((name, "", "", ""))
            continue
        dtypes = OPS[kind].dtypes
        if not dtypes:  # no firmware: DEQUANTIZE converts on the host, shape ops only ever see constants, NEG is
            # float-only (neither TFLite Micro nor TFLite has an integer NEG)
            where = {"dequantize": "host", "neg": "float only"}.get(kind, "folded")
            rows.append((name, kind, where, where))
            continue
        rows.append((name, kind, "yes" if "int8" in dtypes else "", "yes" if "int16" in dtypes else ""))
    return rows


def table() -> str:
    rows = support()
    n8, n16 = sum(r[2] == "yes" for r in rows), sum(r[3] == "yes" for r in rows)
    host = [r[0] for r in rows if r[2] == "host"]
    folded = [r[0] for r in rows if r[2] == "folded"]
    float_only = [r[0] for r in rows if r[2] == "float only"]
    lines = [f"TFLite Micro builtins mcutool imports: {sum(bool(r[1]) for r in rows)} of {len(rows)}; in firmware "
             f"with int8 activations: {n8}, with int16 activations: {n16}; on the host (the conversion at a float "
             f"model border): {', '.join(host) or 'none'}; folded at import (they only see constants once the "
             f"input shape is static): {', '.join(folded) or 'none'}; float models only: "
             f"{', '.join(float_only) or 'none'}.", "",
             "| TFLite builtin | mcutool op | int8 | int16 |", "|---|---|---|---|"]
    lines += [f"| {name} | {kind or '—'} | {i8 or '—'} | {i16 or '—'} |" for name, kind, i8, i16 in rows]
    return "\n".join(lines) + "\n"


def replace_readme_block(begin: str, end: str, text: str, what: str) -> None:
    """Put `text` between the README's `begin` and `end` marker lines (benchmarks that write README tables)."""
    readme = ROOT / "README.md"
    old = readme.read_text()
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pattern.search(old):
        raise SystemExit(f"README.md has no {what} markers ({begin})")
    readme.write_text(pattern.sub(lambda _: f"{begin}\n{text}{end}", old))


def write_readme() -> None:
    replace_readme_block(BEGIN, END, table(), "operator table")


def refresh_builtins() -> None:
    import tflite_micro
    from tflite.BuiltinOperator import BuiltinOperator

    so = Path(tflite_micro.__file__).parent / "python" / "tflite_micro" / "_runtime.so"
    symbols = subprocess.run(["nm", "-C", str(so)], capture_output=True, text=True, check=True).stdout
    names = sorted({n for n in re.findall(r"Register_([A-Z0-9_]+)", symbols) if hasattr(BuiltinOperator, n)})
    header = [line for line in BUILTINS.read_text().splitlines() if line.startswith("#")]
    BUILTINS.write_text("\n".join(header + names) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-readme", action="store_true")
    ap.add_argument("--refresh-builtins", action="store_true")
    args = ap.parse_args()
    if args.refresh_builtins:
        refresh_builtins()
    if args.write_readme:
        write_readme()
    print(table(), end="")


if __name__ == "__main__":
    main()
