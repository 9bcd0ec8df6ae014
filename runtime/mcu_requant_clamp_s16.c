/*
 * mcu_requant_clamp_s16.c - int16 RELU, RELU6 and ABS (TFLite's 16x8 scheme, zero points 0).
 *
 * TFLite Micro's ReluQuantized<int16_t>, Relu6Quantized<int16_t> and AbsEvalQuantized<int16_t> are one shape:
 *   v = x + input_offset; v = |v| if take_abs; v = MultiplyByQuantizedMultiplier(v, quant) if rescale;
 *   out = clamp(v + output_offset, act.min, act.max).
 * The tensors are int16 (arena offsets are 8-byte aligned), passed as bytes like every kernel's. Element i is
 * read before it is written, so the output may overwrite the input. Portable C for every core.
 */
#include "mcu_kernels.h"

mcu_status mcu_requant_clamp_s16(const mcu_requant_clamp_params *params, const int8_t *input, int8_t *output)
{
    const int16_t *in = (const int16_t *)(const void *)input;
    int16_t *out = (int16_t *)(void *)output;
    int32_t i;
    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    for (i = 0; i < params->size; i++) {
        int32_t v = in[i] + params->input_offset;
        if (params->take_abs && v < 0) {
            v = -v;
        }
        if (params->rescale) {
            v = mcu_requantize(v, params->quant.multiplier, params->quant.shift);
        }
        out[i] = (int16_t)mcu_clamp_i32(v + params->output_offset, params->act.min, params->act.max);
    }
    return MCU_OK;
}
