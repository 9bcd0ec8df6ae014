/*
 * mcu_mul_s8.c - int8 elementwise multiplication with broadcasting over N, H, W, C.
 *
 * Follows TFLite 2.14 reference_integer_ops::Mul / BroadcastMul (kernels/internal/reference/integer_ops/
 * mul.h, MulElementwise):
 *
 *   out = MultiplyByQuantizedMultiplier((x1 + offset1) * (x2 + offset2), m, shift) + output_offset
 *
 * clamped to the activation range, with (m, shift) = QuantizeMultiplier(s1 * s2 / s_out) as TFLite Micro's
 * mul_common.cc Prepare computes it (in double; mcutool/ops/mul.py, at compile time). An input extent of 1
 * repeats over the output's. Portable C.
 */
#include "mcu_kernels.h"

static inline int8_t mcu_mul_one(const mcu_mul_params *p, int32_t x1, int32_t x2)
{
    const int32_t prod = (x1 + p->input1_offset) * (x2 + p->input2_offset);
    const int32_t out = mcu_requantize(prod, p->output_quant.multiplier, p->output_quant.shift)
                        + p->output_offset;
    return (int8_t)mcu_clamp_i32(out, p->act.min, p->act.max);
}

static int mcu_mul_dims_ok(mcu_dims in, mcu_dims out)
{
    return (in.n == out.n || in.n == 1) && (in.h == out.h || in.h == 1) && (in.w == out.w || in.w == 1)
           && (in.c == out.c || in.c == 1);
}

mcu_status mcu_mul_s8(const mcu_mul_params *params, const int8_t *input1, const int8_t *input2,
                      int8_t *output)
{
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const mcu_dims d1 = params->input1;
        const mcu_dims d2 = params->input2;
        const mcu_dims o = params->output;
        if (!mcu_mul_dims_ok(d1, o) || !mcu_mul_dims_ok(d2, o)) {
            return MCU_ERROR_ARGUMENT;
        }
        if (d1.n == o.n && d1.h == o.h && d1.w == o.w && d1.c == o.c && d2.n == o.n && d2.h == o.h
            && d2.w == o.w && d2.c == o.c) {
            const int32_t size = o.n * o.h * o.w * o.c;
            int32_t i;
            for (i = 0; i < size; i++) {
                output[i] = mcu_mul_one(params, input1[i], input2[i]);
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
                        const int8_t *p1 = input1 + b * n1 + y * h1 + x * w1;
                        const int8_t *p2 = input2 + b * n2 + y * h2 + x * w2;
                        for (c = 0; c < o.c; c++) {
                            *output++ = mcu_mul_one(params, p1[c * c1], p2[c * c2]);
                        }
                    }
                }
            }
        }
    }
    return MCU_OK;
}
