/*
 * mcu_add_s16.c - int16 elementwise addition and subtraction with broadcasting over N, H, W, C.
 *
 * Follows TFLite Micro's add.cc for int16: reference_ops::Add(..., pot_scale = false), i.e.
 * AddGeneralParamScale / AddElementwise and BroadcastAdd6DSlow (kernels/internal/reference/add.h), with the
 * parameters add_common.cc's Prepare computes for int16 (left_shift 15, per-input multipliers of
 * s_i / (2 max(s1, s2)), output multiplier 2 max(s1, s2) / (2^15 s_out); zero points 0):
 *
 *   v_i   = MultiplyByQuantizedMultiplierSmallerThanOneExp((x_i + offset_i) << left_shift, m_i, shift_i)
 *   out   = MultiplyByQuantizedMultiplierSmallerThanOneExp(v_1 + v_2, m_out, shift_out) + output_offset
 *
 * clamped to the activation range; with `subtract` set, v_1 - v_2 (SUB: reference_ops::Sub /
 * BroadcastQuantSubSlow, reference/sub.h, with TFLite Micro's sub_common.cc Prepare). (MultiplyByQuantizedMultiplierSmallerThanOneExp equals
 * MultiplyByQuantizedMultiplier for the shifts <= 0 used here.) An input extent of 1 repeats over the
 * output's extent (NumPy broadcasting, what TFLite's BroadcastAdd does). Portable C for every core.
 */
#include "mcu_kernels.h"

static inline int16_t mcu_add_one(const mcu_add_params *p, int32_t x1, int32_t x2)
{
    const int32_t in1 = mcu_fp_shl(x1 + p->input1_offset, p->left_shift);
    const int32_t in2 = mcu_fp_shl(x2 + p->input2_offset, p->left_shift);
    const int32_t s1 = mcu_requantize(in1, p->input1_quant.multiplier, p->input1_quant.shift);
    const int32_t s2 = mcu_requantize(in2, p->input2_quant.multiplier, p->input2_quant.shift);
    const int32_t raw = p->subtract ? mcu_fp_sub(s1, s2) : mcu_fp_add(s1, s2);
    const int32_t out = mcu_requantize(raw, p->output_quant.multiplier, p->output_quant.shift)
                        + p->output_offset;
    return (int16_t)mcu_clamp_i32(out, p->act.min, p->act.max);
}

/* Whether `in` broadcasts to `out` (every extent equal or 1). */
static int mcu_add_dims_ok(mcu_dims in, mcu_dims out)
{
    return (in.n == out.n || in.n == 1) && (in.h == out.h || in.h == 1) && (in.w == out.w || in.w == 1)
           && (in.c == out.c || in.c == 1);
}

mcu_status mcu_add_s16(const mcu_add_params *params, const int16_t *input1, const int16_t *input2,
                       int16_t *output)
{
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const mcu_dims d1 = params->input1;
        const mcu_dims d2 = params->input2;
        const mcu_dims o = params->output;
        if (!mcu_add_dims_ok(d1, o) || !mcu_add_dims_ok(d2, o)) {
            return MCU_ERROR_ARGUMENT;
        }
        if (d1.n == o.n && d1.h == o.h && d1.w == o.w && d1.c == o.c && d2.n == o.n && d2.h == o.h
            && d2.w == o.w && d2.c == o.c) {
            /* same shapes: one flat loop */
            const int32_t size = o.n * o.h * o.w * o.c;
            int32_t i;
            for (i = 0; i < size; i++) {
                output[i] = mcu_add_one(params, input1[i], input2[i]);
            }
        } else {
            /* element strides of each input, 0 along broadcast extents */
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
                            *output++ = mcu_add_one(params, p1[c * c1], p2[c * c2]);
                        }
                    }
                }
            }
        }
    }
    return MCU_OK;
}
