"""Code for a `patch_stage` op (mcutool/schedule/patch.py): a loop over the tiles of the patched stage.

Each layer of the stage is emitted by the ordinary emitters (TVM kernels, runtime/ kernels) for the tile's
buffer shapes with its padding removed; the tile buffers are addressed inside the stage's scratch tensor in
the arena. Per tile the loop loads the stage input's region (mcu_patch_load_s8, border positions filled; from an NCHW
graph input whose transpose the stage absorbed, mcu_patch_load_nchw_s8),
runs the tile program (schedule/patch.py PatchPlan.steps: layers, crops of a buffer for a reader that needs
less of it, re-fills of border positions of buffers that reach outside their tensor with mcu_patch_fill_s8)
and stores the output tile (mcu_patch_store_s8). The tiles' origins are one constant table in flash.
"""
from __future__ import annotations

from ..ir import Op
from ..schedule.arena import ArenaPlan
from .model import EMITTERS, Context, LayerCode, emitter


def _origin_table(name: str, plan) -> str:
    rows = [", ".join(f"{y}, {x}" for y, x in org) for org in plan.origins]
    cols = 2 * len(plan.tensors)
    return (f"static const int16_t {name}[{len(rows)}][{cols}] = {{\n    "
            + ",\n    ".join("{" + r + "}" for r in rows) + "\n};\n")


@emitter("patch_stage")
def patch_stage_layer(ctx: Context, op: Op) -> LayerCode:
    plan = op.attrs.plan
    tile = plan.tile
    prefix = ctx.prefix(op)
    base = ctx.plan.offsets[op.outputs[1]]
    offsets = {name: base + off for name, off in plan.offsets.items()}
    sub = Context(tile, ArenaPlan(ctx.plan.size, offsets), ctx.sections)
    layers = [EMITTERS[o.kind](sub, o) for o in tile.ops]

    def buf(j: int) -> str:
        return sub.ptr(plan.buffer_name(j))

    table = f"{prefix}_origin"
    last = len(plan.ops)
    listing = "".join(f" *   {lc.name:<28} {lc.op:<18} kernel: {lc.kernel}\n" for lc in layers)
    h0, w0, c0 = plan.shapes[0]
    H0, W0, _ = plan.full[0]
    load = "mcu_patch_load_nchw_s8" if plan.transpose else "mcu_patch_load_s8"  # NCHW: through strides
    body = [f"{load}({ctx.ptr(plan.source)}, {H0}, {W0}, {c0}, {buf(0)}, {h0}, {w0}, o[0], o[1], {plan.fills[0]});"]
    for kind, arg in plan.steps:
        if kind == "crop":  # a sub-region of a tile buffer, inside it: the load without fill
            hs, ws, c = plan.shapes[arg.src]
            h, w, _ = arg.shape
            body.append(f"mcu_patch_load_s8({buf(arg.src)}, {hs}, {ws}, {c}, {sub.ptr(arg.name)}, {h}, {w}, "
                        f"{arg.dy}, {arg.dx}, 0);")
        elif kind == "op":
            body.append(layers[arg].call)
        else:
            h, w, c = plan.shapes[arg]
            H, W, _ = plan.full[arg]
            body.append(f"mcu_patch_fill_s8({buf(arg)}, {h}, {w}, {c}, o[{2 * arg}], o[{2 * arg + 1}], {H}, {W}, "
                        f"{plan.fills[arg]});")
    h, w, c = plan.shapes[last]
    W = plan.full[last][1]
    body.append(f"mcu_patch_store_s8({buf(last)}, {h}, {w}, {c}, {ctx.ptr(plan.tensors[-1])}, {W}, "
                f"o[{2 * last}], o[{2 * last + 1}]);")
    loop = "\n".join("        " + line for line in body)
    definitions = (
        f"/* patch-based stage: {' -> '.join(o.name for o in plan.ops)} on a {plan.grid}x{plan.grid} grid of "
        f"{plan.shapes[-1][0]}x{plan.shapes[-1][1]} output tiles\n"
        f" * (+{plan.extra_macs:,} MACs, {plan.extra_macs_pct:.2f} % of the model), tile buffers in the arena "
        f"at {base}..{base + plan.scratch_bytes}:\n{listing} */\n"
        + "".join(lc.definitions for lc in layers)
        + _origin_table(table, plan)
        + f"\nstatic void {prefix}(uint8_t *arena)\n{{\n    int32_t p;\n"
        f"    for (p = 0; p < {len(plan.origins)}; p++) {{\n        const int16_t *o = {table}[p];\n"
        f"{loop}\n    }}\n}}\n")
    headers = tuple(sorted({h for lc in layers for h in lc.headers} | {"mcu_patch.h"}))
    kernel = "tvm" if any(lc.kernel == "tvm" for lc in layers) else "template"
    return LayerCode(op.name, op.kind, definitions, f"{prefix}(arena);", kernel, headers)
