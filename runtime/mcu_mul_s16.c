/*
 * mcu_mul_s16.c - int16 elementwise multiplication (TFLite's 16x8 scheme: zero points 0) with broadcasting over
 * N, H, W, C.
 *
 * Follows TFLite Micro's mul.cc for int16: reference_integer_ops::Mul / BroadcastMul4DSlow (kernels/internal/
 * reference/integer_ops/mul.h, MulElementwise for int16):
 *
 *   out = MultiplyByQuantizedMultiplier(x1 * x2, m, shift)      (|x1 * x2| <= 2^30: an int32)
 *
 * clamped to the activation range, with (m, shift) = QuantizeMultiplier(s1 * s2 / s_out) in double as
 * mul_common.cc's Prepare computes it. An input extent of 1 repeats over the output's. The same loops as
 * mcu_mul_s8.c on int16 elements. Portable C.
 */
#include "mcu_kernels.h"

static inline int16_t mcu_mul_one_s16(const mcu_mul_params *p, int32_t x1, int32_t x2)
{
    const int32_t prod = (x1 + p->input1_offset) * (x2 + p->input2_offset);
    const int32_t out = mcu_requantize(prod, p->output_quant.multiplier, p->output_quant.shift)
                        + p->output_offset;
    return (int16_t)mcu_clamp_i32(out, p->act.min, p->act.max);
}

static int mcu_mul_s16_dims_ok(mcu_dims in, mcu_dims out)
{
    return (in.n == out.n || in.n == 1) && (in.h == out.h || in.h == 1) && (in.w == out.w || in.w == 1)
           && (in.c == out.c || in.c == 1);
}

mcu_status mcu_mul_s16(const mcu_mul_params *params, const int16_t *input1, const int16_t *input2,
                       int16_t *output)
{
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const mcu_dims d1 = params->input1;
        const mcu_dims d2 = params->input2;
        const mcu_dims o = params->output;
        if (!mcu_mul_s16_dims_ok(d1, o) || !mcu_mul_s16_dims_ok(d2, o)) {
            return MCU_ERROR_ARGUMENT;
        }
        if (d1.n == o.n && d1.h == o.h && d1.w == o.w && d1.c == o.c && d2.n == o.n && d2.h == o.h
            && d2.w == o.w && d2.c == o.c) {
            const int32_t size = o.n * o.h * o.w * o.c;
            int32_t i;
            for (i = 0; i < size; i++) {
                output[i] = mcu_mul_one_s16(params, input1[i], input2[i]);
            }
        } else {
            const int32_t c1 = d1.c == 1 ? 0 : 1, c2 = d2.c == 1 ? 0 : 1;
            const int32_t w1 = d1.w == 1 ? 0 : d1.c, w2 = d2.w == 1 ? 0 : d2.c;
            const int32_t h1 = d1.h == 1 ? 0 : d1.w * d1.c, h2 = d2.h == 1 ? 0 : d2.w * d2.c;
            const int32_t n1 = d1.n == 1 ? 0 : d1.h * d1.w * d1.c, n2 = d2.n == 1 ? 0 : d2.h * d2.w * d2.c;
            int32_t b, y, x, c;
            for (b = 0; b < o.n; b++) {
                for (y = 0; y < o.h; y++) {
                    for (x = 0; x < o.w; x++) {
                        const int16_t *p1 = input1 + b * n1 + y * h1 + x * w1;
                        const int16_t *p2 = input2 + b * n2 + y * h2 + x * w2;
                        for (c = 0; c < o.c; c++) {
                            *output++ = mcu_mul_one_s16(params, p1[c * c1], p2[c * c2]);
                        }
                    }
                }
            }
        }
    }
    return MCU_OK;
}
