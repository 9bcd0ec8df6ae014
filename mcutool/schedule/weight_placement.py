"""Where each layer's weights live: internal flash, or a board's external memory-mapped flash (DESIGN.md §4, §5).

    place_weights(graph, flash_bytes=1 << 20, ext_flash_bytes=16 << 20)        -> WeightPlacement
    placement.with_more(graph, extra_bytes)      # another `extra_bytes` out of internal flash (after a link)

When the model's weights do not fit internal flash (its size less a reserve for code and runtime), the largest
weight arrays move to `ext_flash` (e.g. the 32F746G-DISCO's QSPI flash at 0x90000000), largest first, until the
rest fits. Only layers whose kernels are generated with their constants in a named section move (conv,
depthwise, fully connected: the MAC layers that hold nearly all weights).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UserError
from ..ir import Graph, op_weight_bytes

FLASH, EXT_FLASH = "flash", "ext_flash"
MOVABLE_KINDS = ("conv2d", "depthwise_conv2d", "fully_connected")
# Internal flash kept for code, the runtime, small constants and .data: an estimate; the link is the judge
# (mcutool.compiler moves more weights if the linker still finds flash short).
CODE_RESERVE_BYTES = 64 * 1024
CODE_RESERVE_PER_LAYER = 2 * 1024


@dataclass
class WeightPlacement:
    ext_flash_bytes: int  # capacity of the external region (0: the board has none)
    layers: dict[str, str] = field(default_factory=dict)  # layer name -> FLASH | EXT_FLASH

    def where(self, layer: str) -> str:
        return self.layers.get(layer, FLASH)

    @property
    def moved(self) -> list[str]:
        return [name for name, where in self.layers.items() if where == EXT_FLASH]

    def bytes_in(self, graph: Graph, region: str) -> int:
        return sum(op_weight_bytes(graph, op) for op in graph.ops if self.where(op.name) == region)

    def with_more(self, graph: Graph, extra_bytes: int) -> "WeightPlacement":
        """This placement with at least `extra_bytes` more weights moved out of internal flash."""
        return _move(graph, dict(self.layers), self.ext_flash_bytes, extra_bytes)


def _candidates(graph: Graph, layers: dict[str, str]) -> list[tuple[int, str]]:
    found = [(op_weight_bytes(graph, op), op.name) for op in graph.ops
             if op.kind in MOVABLE_KINDS and layers.get(op.name, FLASH) == FLASH]
    return sorted((b, n) for b, n in found if b > 0)[::-1]  # largest first; ties by name, deterministic


def _move(graph: Graph, layers: dict[str, str], capacity: int, need: int) -> WeightPlacement:
    placement = WeightPlacement(capacity, layers)
    if need <= 0:
        return placement
    if capacity == 0:
        return placement  # nowhere to go: the link reports internal flash overflowing, with the bytes
    used = placement.bytes_in(graph, EXT_FLASH)
    for nbytes, name in _candidates(graph, layers):
        if need <= 0:
            break
        if used + nbytes > capacity:
            continue
        layers[name] = EXT_FLASH
        used += nbytes
        need -= nbytes
    if need > 0 and not _candidates(graph, layers):
        raise UserError(f"{graph.name}: even with every conv/FC layer's weights in ext_flash "
                        f"({used:,} of {capacity:,} bytes), {need:,} bytes too many remain in internal flash.")
    return placement


def internal_weight_budget(graph: Graph, flash_bytes: int) -> int:
    """Internal flash left for weights once the code reserve (an estimate per graph) is set aside."""
    return flash_bytes - (CODE_RESERVE_BYTES + CODE_RESERVE_PER_LAYER * len(graph.ops))


def place_weights(graph: Graph, flash_bytes: int, ext_flash_bytes: int = 0) -> WeightPlacement:
    """Every layer in internal flash if the weights fit it (less the code reserve); else the largest weight
    arrays in ext_flash until the rest fits."""
    weights = sum(op_weight_bytes(graph, op) for op in graph.ops)
    return _move(graph, {op.name: FLASH for op in graph.ops}, ext_flash_bytes,
                 weights - internal_weight_budget(graph, flash_bytes))
