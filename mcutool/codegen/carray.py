"""Deterministic C text for constant arrays and scalar values (same input -> byte-identical source)."""
from __future__ import annotations

import numpy as np

C_TYPES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int32_t", "uint32": "uint32_t",
           "int64": "int64_t"}


def c_identifier(name: str) -> str:
    """A C identifier from a layer/tensor name (letters, digits, underscores; never starting with a digit)."""
    out = "".join(ch if ch.isalnum() else "_" for ch in name)
    return out if out and not out[0].isdigit() else "_" + out


def state_symbol(tensor: str) -> str:
    """model.c's persistent array of a variable tensor (the state of a stateful op)."""
    return "mcu_state_" + c_identifier(tensor)


def c_array(name: str, values: np.ndarray, ctype: str | None = None, per_line: int = 16,
            section: str | None = None) -> str:
    """`static const <type> name[N] = {...};`, values in row-major order, `per_line` to a line."""
    flat = np.asarray(values).reshape(-1)
    ctype = ctype or C_TYPES[str(flat.dtype)]
    attr = f' __attribute__((section("{section}"), aligned(4)))' if section else " __attribute__((aligned(4)))"
    items = [str(int(v)) for v in flat]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[{len(items)}]{attr} = {{\n    {body}\n}};\n"
