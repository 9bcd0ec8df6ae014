"""What a firmware team runs in CI: each model on each board, in the board's emulator, against TFLite."""
import numpy as np
from tflite_runtime.interpreter import Interpreter, OpResolverType


def tflite_reference(model, x):
    """The team's oracle: TFLite's reference kernels (the arithmetic TFLite Micro runs on the device)."""
    it = Interpreter(model_path=str(model), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def test_output_equals_tflite(firmware, mcutool_model):
    rng = np.random.default_rng(1)
    for _ in range(2):
        x = rng.integers(-128, 128, size=firmware.report["io"]["inputs"][0]["shape"]).astype(np.int8)
        assert np.array_equal(firmware.run(x), tflite_reference(mcutool_model, x))
    assert firmware.instructions > 0


def test_fits_with_room_to_spare(firmware, mcutool_board):
    limit = firmware.report["memory"]["sram_limit_bytes"]
    assert firmware.sram_bytes <= 0.75 * limit, f"{firmware.sram_bytes} of {limit} B SRAM on {mcutool_board}"
