"""What `inspect` shows and report.json's `layers`: per-layer shapes, MACs, parameters and activation bytes."""
from __future__ import annotations

from .frontends import unsupported_summary
from .ir import Graph, Tensor, op_macs, op_weight_bytes
from .schedule.liveness import layerwise_peak_bytes, live_bytes_per_op


def tensor_info(t: Tensor) -> dict:
    d = {"name": t.name, "shape": list(t.shape), "dtype": t.dtype}
    if t.quant is not None and not t.quant.per_channel:
        d["scale"] = float(t.quant.scale[0])
        d["zero_point"] = int(t.quant.zero_point[0])
    return d


WEIGHT_BITS = {"int4": 4, "int8": 8, "uint8": 8, "int16": 16, "float32": 32}


def _weight_bits(graph: Graph, op) -> int | None:
    """Bits per weight of a conv / depthwise / fully connected layer (int4 ones are stored packed), else None."""
    if op.kind not in ("conv2d", "depthwise_conv2d", "fully_connected", "transpose_conv2d") or len(op.inputs) < 2:
        return None
    w = graph.tensor(op.inputs[1])  # the weights (also of a transpose conv, after its output shape)
    return WEIGHT_BITS.get(w.dtype) if w.is_const else None


def layer_rows(graph: Graph) -> list[dict]:
    live = live_bytes_per_op(graph)
    rows = []
    for op, live_bytes in zip(graph.ops, live):
        ins = [t for t in graph.op_inputs(op) if t is not None]
        out = graph.tensor(op.outputs[0])
        rows.append({
            "name": op.name,
            "op": f"{op.attrs.op} (unsupported)" if op.kind == "unsupported" else op.kind,
            "in_shape": list(ins[0].shape) if ins else [],
            "out_shape": list(out.shape),
            "dtype": out.dtype,
            "weight_bits": _weight_bits(graph, op),
            "macs": op_macs(graph, op),
            "params": sum(t.size for t in ins if t.is_const),
            "weights_bytes": op_weight_bytes(graph, op),
            "in_bytes": sum(t.nbytes for t in ins if not t.is_const),
            "out_bytes": sum(graph.tensor(n).nbytes for n in op.outputs),
            "live_bytes": live_bytes,
            **({"source": graph.sources[op.name]} if op.name in graph.sources else {}),
        })
    return rows


def model_summary(graph: Graph) -> dict:
    rows = layer_rows(graph)
    return {
        "model": graph.name,
        "inputs": [tensor_info(graph.tensor(n)) for n in graph.inputs],
        "outputs": [tensor_info(graph.tensor(n)) for n in graph.outputs],
        "macs": sum(r["macs"] for r in rows),
        "params": sum(t.size for t in graph.tensors.values() if t.is_const),
        "weights_bytes": sum(t.nbytes for t in graph.tensors.values() if t.is_const),
        "layerwise_peak_bytes": layerwise_peak_bytes(graph),
        "layers": rows,
        "unsupported": unsupported_summary(graph),  # "" when mcutool runs every layer
    }
