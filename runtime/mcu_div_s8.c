/*
 * mcu_div_s8.c - int8 elementwise division with broadcasting over N, H, W, C.
 *
 * TFLite Micro's DIV (kernels/div.cc, reference_ops::DivElementwise): with v1 = x1 + offset1, v2 = x2 + offset2
 * (signs moved so that v2 > 0), the quotient is v1 * GetReciprocal(v2) with v1 shifted left by its headroom
 * (CountLeadingSignBits), then requantized by output_quant with the shift lowered by the reciprocal's and the
 * headroom's exponents (a right shift: runtime_params keeps output_quant.shift <= 23), plus output_offset,
 * clamped to the activation range. v2 == 0 (undefined in TFLite) gives act.max for v1 >= 0, act.min otherwise.
 * A total right shift above 31 (a small numerator over a large divisor) is rounded exactly here; TFLite's
 * RoundingDivideByPOT is undefined there (it shifts an int32 by 32 or more) and its results differ.
 * The reciprocal of each of the 256 possible divisors is a table of the layer (recip, recip_shift: GetReciprocal
 * of |x2 - zp2|, indexed by the byte (uint8_t)x2), computed at compile time.
 * Portable C for every core.
 */
#include "mcu_kernels.h"
#include "mcu_broadcast.h"

/* tflite::CountLeadingSignBits for int32. */
static inline int mcu_clsb_i32(int32_t x)
{
    if (x >= 0) {
        return mcu_clz_u32((uint32_t)x) - 1;
    }
    return x == MCU_INT32_MIN ? 0 : mcu_clz_u32(2u * (uint32_t)(-x) - 1u);
}

static inline int8_t mcu_div_one(const mcu_div_params *p, int8_t x1, int8_t x2)
{
    int32_t v1 = x1 + p->input1_offset;
    const int32_t v2 = x2 + p->input2_offset;
    int recip_shift, headroom, total_shift;
    int32_t inv, unscaled, out;
    if (v2 == 0) {
        return (int8_t)(v1 >= 0 ? p->act.max : p->act.min);
    }
    if (v2 < 0) {  /* the quotient of -v1 by |v2| */
        v1 = -v1;
    }
    inv = p->recip[(uint8_t)x2];  /* GetReciprocal(|v2|, 31), tabulated at compile time */
    recip_shift = p->recip_shift[(uint8_t)x2];
    headroom = mcu_clsb_i32(v1);
    unscaled = mcu_requantize_gt_one(v1, inv, headroom);
    total_shift = p->output_quant.shift - recip_shift - headroom;
    if (total_shift >= -31) {
        out = mcu_requantize(unscaled, p->output_quant.multiplier, total_shift);
    } else {
        /* x / 2^e for e >= 32 rounds to 0 (to -1 only for -2^31 / 2^32, a tie away from zero). */
        const int32_t high = mcu_fp_srdhm(unscaled, p->output_quant.multiplier);
        out = (high == MCU_INT32_MIN && total_shift == -32) ? -1 : 0;
    }
    out += p->output_offset;
    return (int8_t)mcu_clamp_i32(out, p->act.min, p->act.max);
}

mcu_status mcu_div_s8(const mcu_div_params *params, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL || params->recip == NULL
        || params->recip_shift == NULL || !MCU_BROADCAST_OK(params)) {
        return MCU_ERROR_ARGUMENT;
    }
    MCU_BROADCAST_BINARY(params, input1, input2, output, mcu_div_one);
    return MCU_OK;
}
