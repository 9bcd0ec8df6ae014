/*
 * mcu_prelu_s8.c - PReLU with alpha broadcast over N, H, W, C: int8, and int16 with an int8 alpha.
 *
 * TFLite Micro's PRELU (kernels/prelu_common.cc, reference_ops::BroadcastPrelu4DSlow):
 *   v = x + input_offset;  out = v >= 0 ? MultiplyByQuantizedMultiplier(v, positive_quant)
 *                                      : MultiplyByQuantizedMultiplier(v * (alpha + alpha_offset), negative_quant)
 *   out + output_offset, clamped to int8. Portable C for every core.
 */
#include "mcu_kernels.h"
#include "mcu_broadcast.h"

static inline int8_t mcu_prelu_one(const mcu_prelu_params *p, int8_t x, int8_t alpha)
{
    const int32_t v = x + p->input_offset;
    int32_t out;
    if (v >= 0) {
        out = mcu_requantize(v, p->positive_quant.multiplier, p->positive_quant.shift);
    } else {
        out = mcu_requantize(v * (alpha + p->alpha_offset), p->negative_quant.multiplier, p->negative_quant.shift);
    }
    return (int8_t)mcu_clamp_i32(out + p->output_offset, -128, 127);
}

mcu_status mcu_prelu_s8(const mcu_prelu_params *params, const int8_t *input, const int8_t *alpha, int8_t *output)
{
    if (params == NULL || input == NULL || alpha == NULL || output == NULL || !MCU_BROADCAST_OK(params)) {
        return MCU_ERROR_ARGUMENT;
    }
    MCU_BROADCAST_BINARY(params, input, alpha, output, mcu_prelu_one);
    return MCU_OK;
}

/* int16 input and output (16x8 models), int8 alpha: the same arithmetic, clamped to int16. */
static inline int16_t mcu_prelu_one_s16(const mcu_prelu_params *p, int16_t x, int8_t alpha)
{
    const int32_t v = x + p->input_offset;
    int32_t out;
    if (v >= 0) {
        out = mcu_requantize(v, p->positive_quant.multiplier, p->positive_quant.shift);
    } else {
        out = mcu_requantize(v * (alpha + p->alpha_offset), p->negative_quant.multiplier, p->negative_quant.shift);
    }
    return (int16_t)mcu_clamp_i32(out + p->output_offset, -32768, 32767);
}

mcu_status mcu_prelu_s16(const mcu_prelu_params *params, const int8_t *input, const int8_t *alpha, int8_t *output)
{
    if (params == NULL || input == NULL || alpha == NULL || output == NULL || !MCU_BROADCAST_OK(params)) {
        return MCU_ERROR_ARGUMENT;
    }
    MCU_BROADCAST_BINARY_T(int16_t, int8_t, int16_t, params, input, alpha, output, mcu_prelu_one_s16);
    return MCU_OK;
}
