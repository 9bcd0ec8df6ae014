/*
 * mcu_quantize_s8.c - requantization between int8, int16 and int32 tensors (QUANTIZE with an integer input).
 *
 * Follows TFLite Micro's quantize_common.cc: reference_ops::Requantize (kernels/internal/reference/
 * requantize.h) with (m, shift) = QuantizeMultiplier((double)s_in / (double)s_out):
 *
 *   out = MultiplyByQuantizedMultiplier(x - zp_in, m, shift) + zp_out, clamped to the output dtype.
 *
 * x - zp_in is int32 arithmetic, as in TFLite Micro (for an int32 input it wraps where TFLite's overflows; for
 * int8/int16 inputs it cannot). (Requantize's XOR-0x80 fast path only applies to int8 <-> uint8.) One loop,
 * instantiated per (input, output) type pair. Portable C for every core.
 */
#include "mcu_kernels.h"

static inline int32_t mcu_quantize_one(const mcu_quantize_params *p, int32_t x)
{
    const int32_t v = mcu_requantize(mcu_fp_add(x, p->input_offset), p->quant.multiplier, p->quant.shift)
                      + p->output_offset;
    return mcu_clamp_i32(v, p->act.min, p->act.max);
}

#define MCU_QUANTIZE_KERNEL(NAME, IN_T, OUT_T)                                                     \
    mcu_status NAME(const mcu_quantize_params *params, const IN_T *input, OUT_T *output)          \
    {                                                                                              \
        int32_t i;                                                                                 \
        if (params == NULL || input == NULL || output == NULL) {                                   \
            return MCU_ERROR_ARGUMENT;                                                             \
        }                                                                                          \
        for (i = 0; i < params->size; i++) {                                                       \
            output[i] = (OUT_T)mcu_quantize_one(params, input[i]);                                 \
        }                                                                                          \
        return MCU_OK;                                                                             \
    }

MCU_QUANTIZE_KERNEL(mcu_quantize_s8, int8_t, int8_t)
MCU_QUANTIZE_KERNEL(mcu_quantize_s8_s16, int8_t, int16_t)
MCU_QUANTIZE_KERNEL(mcu_quantize_s16_s8, int16_t, int8_t)
MCU_QUANTIZE_KERNEL(mcu_quantize_s16, int16_t, int16_t)
MCU_QUANTIZE_KERNEL(mcu_quantize_s16_s32, int16_t, int32_t)
MCU_QUANTIZE_KERNEL(mcu_quantize_s32_s8, int32_t, int8_t)
MCU_QUANTIZE_KERNEL(mcu_quantize_s32_s16, int32_t, int16_t)
