/*
 * mcu_rsqrt_s16.c - int16 1/sqrt(x) (TFLite's 16x8 scheme, zero points 0).
 *
 * TFLite Micro's RsqrtEvalQuantized<int16_t> (kernels/elementwise.cc): for x > 0,
 *   (m, s) = GetInvSqrtQuantizedMultiplierExp(x), data = MultiplyByQuantizedMultiplier(1, m, s + 20),
 *   out = MultiplyByQuantizedMultiplier(data, quant.multiplier, quant.shift - 20), clamped to int16;
 * x <= 0 gives 32767 (TFLite: 0 does; a negative input fails its invocation). Tensors are int16 passed as bytes.
 * Element i is read before it is written, so the output may overwrite the input. Portable C for every core.
 */
#include "mcu_kernels.h"

mcu_status mcu_rsqrt_s16(const mcu_rsqrt_s16_params *params, const int8_t *input, int8_t *output)
{
    const int16_t *in = (const int16_t *)(const void *)input;
    int16_t *out = (int16_t *)(void *)output;
    int32_t i;
    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    for (i = 0; i < params->size; i++) {
        const int32_t v = in[i];
        if (v <= 0) {
            out[i] = 32767;
        } else {
            int32_t m;
            int s;
            mcu_fp_inv_sqrt(v, &m, &s);
            {
                const int32_t data = mcu_requantize(1, m, s + 20);
                const int32_t y = mcu_requantize(data, params->quant.multiplier, params->quant.shift - 20);
                out[i] = (int16_t)mcu_clamp_i32(y, -32768, 32767);
            }
        }
    }
    return MCU_OK;
}
