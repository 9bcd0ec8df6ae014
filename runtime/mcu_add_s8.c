/*
 * mcu_add_s8.c - int8 elementwise addition with broadcasting over N, H, W, C.
 *
 * Follows TFLite 2.14 reference_integer_ops::Add / BroadcastAdd (kernels/internal/reference/integer_ops/
 * add.h, AddFunc) with the parameters add.cc's Prepare computes for int8 (left_shift 20, per-input
 * multipliers of s_i / (2 max(s1, s2)), output multiplier 2 max(s1, s2) / (2^20 s_out)):
 *
 *   v_i   = MultiplyByQuantizedMultiplierSmallerThanOneExp((x_i + offset_i) << left_shift, m_i, shift_i)
 *   out   = MultiplyByQuantizedMultiplierSmallerThanOneExp(v_1 + v_2, m_out, shift_out) + output_offset
 *
 * clamped to the activation range; with `subtract` set, v_1 - v_2 (SUB: reference_ops::Sub /
 * BroadcastQuantSubSlow, reference/sub.h, with TFLite Micro's sub_common.cc Prepare). (MultiplyByQuantizedMultiplierSmallerThanOneExp equals
 * MultiplyByQuantizedMultiplier for the shifts <= 0 used here.) An input extent of 1 repeats over the
 * output's extent (NumPy broadcasting, what TFLite's BroadcastAdd does). Portable C for every core.
 *
 * Same shapes and at least MCU_ADD_TABLE_MIN elements: v_i depends on one int8 value only, so both are
 * tabulated for the 256 values first (2 x 1 KB on the stack; mcu_requantize_fast where the right shift is
 * >= 1: the input of the smaller scale); each element is then two table reads, one add and the output
 * requantization (mcu_requantize_fast when its right shift is >= 1, the literal sequence otherwise):
 * ResNet-8's 32x32x16 add went from 114 to ~18 instructions per element on Cortex-M7 (README).
 */
#include "mcu_kernels.h"
#include "mcu_requant.h"

/* below this many elements the two tables (512 requantizations) cost more than they save */
#define MCU_ADD_TABLE_MIN 1024

static void mcu_add_table(int32_t *table, int32_t offset, int32_t left_shift, mcu_quant q)
{
    int32_t x;
    if (q.shift <= -1) {
        const int64_t round = mcu_requant_round(q.shift);
        for (x = -128; x < 128; x++) {
            table[x + 128] = mcu_requantize_fast(mcu_fp_shl(x + offset, left_shift), q.multiplier, round,
                                                 -q.shift - 1);
        }
    } else if (q.shift == 0 && q.multiplier == (1 << 30) && left_shift >= 1) {
        /* the input of the larger scale: real multiplier exactly 1/2, and SRDHM(2a, 2^30) = a exactly */
        for (x = -128; x < 128; x++) {
            table[x + 128] = mcu_fp_shl(x + offset, left_shift - 1);
        }
    } else {
        for (x = -128; x < 128; x++) {
            table[x + 128] = mcu_requantize(mcu_fp_shl(x + offset, left_shift), q.multiplier, q.shift);
        }
    }
}

/* The fast loop: the output zero point folded into the rounding constant (exact: it adds zp * 2^(31 + e) before
 * the division by 2^(31 + e); |zp| <= 128 and e <= 23 keep the sum inside int64), SSAT when the clamp is all of
 * int8 (GCC -O3 unswitches the loop on that). */
MCU_KERNEL_OPT static void mcu_add_tabulated_fast(const int32_t *u1, const int32_t *u2, const int8_t *input1,
                                                  const int8_t *input2, int8_t *output, int32_t size,
                                                  int32_t mult, int64_t round, int32_t shift_hi, int32_t lo,
                                                  int32_t hi)
{
    int32_t i;
    for (i = 0; i < size; i++) {
        const int32_t sum = u1[input1[i]] + u2[input2[i]];
        output[i] = (int8_t)mcu_clamp_s8(mcu_requantize_fast(sum, mult, round, shift_hi), lo, hi);
    }
}

static void mcu_add_tabulated(const mcu_add_params *p, const int8_t *input1, const int8_t *input2,
                              int8_t *output, int32_t size)
{
    int32_t t1[256], t2[256];
    const int32_t mult = p->output_quant.multiplier, shift = p->output_quant.shift;
    const int32_t zp = p->output_offset, lo = p->act.min, hi = p->act.max;
    int32_t i;
    mcu_add_table(t1, p->input1_offset, p->left_shift, p->input1_quant);
    mcu_add_table(t2, p->input2_offset, p->left_shift, p->input2_quant);
    if (shift <= -1 && shift >= -23) {
        const int64_t round = mcu_requant_round(shift) + (int64_t)zp * ((int64_t)1 << (31 - shift));
        mcu_add_tabulated_fast(t1 + 128, t2 + 128, input1, input2, output, size, mult, round, -shift - 1, lo, hi);
        return;
    }
    for (i = 0; i < size; i++) {
        const int32_t sum = t1[input1[i] + 128] + t2[input2[i] + 128];
        output[i] = (int8_t)mcu_clamp_i32(mcu_requantize(sum, mult, shift) + zp, lo, hi);
    }
}

static inline int8_t mcu_add_one(const mcu_add_params *p, int32_t x1, int32_t x2)
{
    const int32_t in1 = mcu_fp_shl(x1 + p->input1_offset, p->left_shift);
    const int32_t in2 = mcu_fp_shl(x2 + p->input2_offset, p->left_shift);
    const int32_t s1 = mcu_requantize(in1, p->input1_quant.multiplier, p->input1_quant.shift);
    const int32_t s2 = mcu_requantize(in2, p->input2_quant.multiplier, p->input2_quant.shift);
    const int32_t raw = p->subtract ? mcu_fp_sub(s1, s2) : mcu_fp_add(s1, s2);
    const int32_t out = mcu_requantize(raw, p->output_quant.multiplier, p->output_quant.shift)
                        + p->output_offset;
    return (int8_t)mcu_clamp_i32(out, p->act.min, p->act.max);
}

/* Whether `in` broadcasts to `out` (every extent equal or 1). */
static int mcu_add_dims_ok(mcu_dims in, mcu_dims out)
{
    return (in.n == out.n || in.n == 1) && (in.h == out.h || in.h == 1) && (in.w == out.w || in.w == 1)
           && (in.c == out.c || in.c == 1);
}

mcu_status mcu_add_s8(const mcu_add_params *params, const int8_t *input1, const int8_t *input2,
                      int8_t *output)
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
            if (size >= MCU_ADD_TABLE_MIN) {
                mcu_add_tabulated(params, input1, input2, output, size);
                return MCU_OK;
            }
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
                        const int8_t *p1 = input1 + b * n1 + y * h1 + x * w1;
                        const int8_t *p2 = input2 + b * n2 + y * h2 + x * w2;
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
