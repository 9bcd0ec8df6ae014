/*
 * mcu_kernels.h - mcutool's portable int8 kernels (TFLite int8 spec, NHWC), bit-exact with TFLite 2.14's
 * reference integer kernels (the BUILTIN_REF resolver of tflite-runtime, DESIGN.md section 6).
 *
 * One kernel family per file: runtime/mcu_<op>[_<case>]_s8.c. Every kernel has the same shape:
 *
 *     mcu_status mcu_<op>_s8(const mcu_<op>_params *params, <inputs>, int8_t *output);
 *
 * The parameter struct holds shapes (NHWC; a tensor of lower rank has its leading dimensions set to 1)
 * and quantization parameters that mcutool precomputes at compile time in Python
 * (mcutool/codegen/runtime_params.py: multipliers, shifts, zero points, clamp ranges, lookup tables).
 * Kernels only touch data. Conventions shared by all structs:
 *
 *   - `*_offset` of an input  = -(input zero point)   (added to the raw int8 value, as TFLite/CMSIS-NN do)
 *     `*_offset` of an output = +(output zero point)
 *   - a mcu_quant is TFLite's (Q31 multiplier, shift) pair: real multiplier = multiplier * 2^(shift - 31);
 *     it is applied with MultiplyByQuantizedMultiplier (mcu_requantize in mcu_fixedpoint.h).
 *   - mcu_activation is the fused activation as a clamp of the int8 output ([-128, 127] for none).
 *   - in place: add, mul, softmax, lut/logistic and quantize may write their output over their first input
 *     when both have the same shape (each output element is written after the inputs it depends on are
 *     read); the other kernels need distinct buffers.
 *
 * C99, freestanding (<stdint.h>, <stddef.h>, <string.h>), no heap, no floating point.
 * Reshape (and squeeze / expand_dims) has no kernel: the output aliases the input.
 */
#ifndef MCU_KERNELS_H
#define MCU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "mcu_fixedpoint.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    MCU_OK = 0,
    MCU_ERROR_ARGUMENT = -1, /* a NULL pointer or inconsistent shapes in the parameters */
    MCU_ERROR_EMPTY = -2     /* a pooling window without a single valid input element (TFLite fails too) */
} mcu_status;

/* NHWC extents; a tensor of rank r < 4 sets its first 4 - r extents to 1. */
typedef struct {
    int32_t n;
    int32_t h;
    int32_t w;
    int32_t c;
} mcu_dims;

/* TFLite's requantization pair (QuantizeMultiplier): real = multiplier * 2^(shift - 31). */
typedef struct {
    int32_t multiplier;
    int32_t shift;
} mcu_quant;

/* Output clamp (fused activation); [-128, 127] when there is none. */
typedef struct {
    int32_t min;
    int32_t max;
} mcu_activation;

/* ---- pooling (mcu_avg_pool2d_s8.c, mcu_max_pool2d_s8.c) ------------------------------------------- */
/* reference_integer_ops::AveragePool / MaxPool. Input and output share scale and zero point (TFLite
 * requires it), so no requantization: the average is over raw values with TFLite's rounding.
 * count_include_pad (average pool only; ONNX's option, TFLite never sets it): window positions inside the
 * explicit pads count too and hold pad_value (the zero point); positions beyond the pads never count. */
typedef struct {
    mcu_dims input;
    mcu_dims output;
    int32_t filter_h;
    int32_t filter_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_top;    /* TFLite's padding_values.height */
    int32_t pad_left;   /* TFLite's padding_values.width */
    int32_t pad_bottom; /* implied by the output size; kept for checks */
    int32_t pad_right;
    int32_t count_include_pad; /* 0: divide by the valid elements (TFLite) */
    int32_t pad_value;         /* value of a counted padded position (the zero point) */
    mcu_activation act;
} mcu_pool_params;

mcu_status mcu_avg_pool2d_s8(const mcu_pool_params *params, const int8_t *input, int8_t *output);
mcu_status mcu_max_pool2d_s8(const mcu_pool_params *params, const int8_t *input, int8_t *output);

/* ---- add (mcu_add_s8.c) ----------------------------------------------------------------------------- */
/* reference_integer_ops::Add / BroadcastAdd: both inputs are shifted left by left_shift (20), rescaled
 * to a common scale, summed and requantized. An input extent of 1 broadcasts over the output's. */
typedef struct {
    mcu_dims input1;
    mcu_dims input2;
    mcu_dims output;
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t output_offset;
    int32_t left_shift;
    mcu_quant input1_quant;
    mcu_quant input2_quant;
    mcu_quant output_quant;
    mcu_activation act;
} mcu_add_params;

mcu_status mcu_add_s8(const mcu_add_params *params, const int8_t *input1, const int8_t *input2,
                      int8_t *output);

/* ---- mul (mcu_mul_s8.c) ----------------------------------------------------------------------------- */
/* reference_integer_ops::Mul / BroadcastMul: (x1 + off1) * (x2 + off2) requantized. */
typedef struct {
    mcu_dims input1;
    mcu_dims input2;
    mcu_dims output;
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t output_offset;
    mcu_quant output_quant;
    mcu_activation act;
} mcu_mul_params;

mcu_status mcu_mul_s8(const mcu_mul_params *params, const int8_t *input1, const int8_t *input2,
                      int8_t *output);

/* ---- softmax (mcu_softmax_s8.c) ----------------------------------------------------------------------- */
/* reference_ops::Softmax (int8 in, int8 out with scale 1/256 and zero point -128), gemmlowp fixed point:
 * input differences rescaled to Q5.26 by (input_beta_multiplier, input_beta_left_shift), exp, sum in
 * Q12.19, reciprocal. Differences below diff_min contribute nothing. Softmax runs over the last axis. */
typedef struct {
    int32_t outer; /* number of rows: the product of all extents but the last */
    int32_t depth; /* the last extent */
    int32_t input_beta_multiplier;
    int32_t input_beta_left_shift;
    int32_t diff_min;
} mcu_softmax_params;

mcu_status mcu_softmax_s8(const mcu_softmax_params *params, const int8_t *input, int8_t *output);

/* ---- lookup table (mcu_lut_s8.c): logistic, and any other int8 -> int8 function -------------------- */
/* TFLite 2.14's int8 LOGISTIC (reference and optimized resolvers alike) is a 256-entry table filled at
 * Prepare time; mcutool fills the same table at compile time. table[(uint8_t)x] is the output for x. */
typedef struct {
    int32_t size;        /* number of elements */
    const int8_t *table; /* 256 entries, indexed by the input's two's-complement byte */
} mcu_lut_params;

mcu_status mcu_lut_s8(const mcu_lut_params *params, const int8_t *input, int8_t *output);
mcu_status mcu_logistic_s8(const mcu_lut_params *params, const int8_t *input, int8_t *output);

/* ---- pad (mcu_pad_s8.c) ------------------------------------------------------------------------------ */
/* reference_ops::Pad: the input placed at pad_before[] inside the output; the rest is pad_value
 * (the output zero point for PAD, the constant for PADV2). Index order of pad_before: N, H, W, C. */
typedef struct {
    mcu_dims input;
    mcu_dims output;
    int32_t pad_before[4];
    int32_t pad_value;
} mcu_pad_params;

mcu_status mcu_pad_s8(const mcu_pad_params *params, const int8_t *input, int8_t *output);

/* ---- transpose (mcu_transpose_s8.c) ------------------------------------------------------------------ */
/* reference_ops::Transpose: output dim i is input dim perm[i]. Rank < 4 is padded in front with extents
 * of 1 and perm shifted accordingly (runtime_params does it). */
typedef struct {
    mcu_dims input;
    int32_t perm[4];
} mcu_transpose_params;

mcu_status mcu_transpose_s8(const mcu_transpose_params *params, const int8_t *input, int8_t *output);

/* ---- mean (mcu_mean_s8.c) ----------------------------------------------------------------------------- */
/* reference_ops::QuantizedMeanOrSum (TFLite 2.14's int8 MEAN, any keep_dims): sum of (x + input_offset)
 * over the reduced axes, times quant (= in_scale / out_scale with 1/count folded into the multiplier as
 * TFLite does), plus output_offset, clamped to int8. axis_mask bit 0..3 = N, H, W, C reduced. */
typedef struct {
    mcu_dims input;
    int32_t axis_mask;
    int32_t input_offset;
    int32_t output_offset;
    mcu_quant quant;
} mcu_mean_params;

mcu_status mcu_mean_s8(const mcu_mean_params *params, const int8_t *input, int8_t *output);

/* ---- concatenation (mcu_concat_s8.c) ----------------------------------------------------------------- */
/* reference_ops::Concatenation: for each of `outer` slices, the inputs' blocks of copy_size[i] bytes one
 * after another (copy_size[i] = extent of input i along the axis * product of the extents after it).
 * Input i is copied as is when table[i] is NULL (same scale and zero point as the output), else mapped
 * through its 256-entry requantization table (table[i][(uint8_t)x]). */
typedef struct {
    int32_t num_inputs;
    int32_t outer;              /* product of the extents before the axis */
    const int32_t *copy_size;   /* num_inputs entries */
    const int8_t *const *table; /* num_inputs entries, NULL entries copy; the pointer itself may be NULL */
} mcu_concat_params;

mcu_status mcu_concat_s8(const mcu_concat_params *params, const int8_t *const *inputs, int8_t *output);

/* ---- quantize int8 -> int8 (mcu_quantize_s8.c) ------------------------------------------------------- */
/* reference_ops::Requantize: MultiplyByQuantizedMultiplier(x + input_offset) + output_offset, clamped. */
typedef struct {
    int32_t size;
    int32_t input_offset;
    int32_t output_offset;
    mcu_quant quant;
} mcu_quantize_params;

mcu_status mcu_quantize_s8(const mcu_quantize_params *params, const int8_t *input, int8_t *output);

/* ==== elementwise and activation operators (issue 10, branch ops8a) ===================================
 * ABS, RELU, RELU6, HARD_SWISH, TANH, ELU and RSQRT on int8 are tables for mcu_lut_s8 (computed at compile time
 * from the numpy reference, which follows TFLite Micro's integer arithmetic); the ops below have kernels. */

/* ---- binary elementwise ops with broadcasting (mcu_broadcast.h): shapes of both inputs and the output ---- */
typedef struct {
    mcu_dims input1;
    mcu_dims input2;
    mcu_dims output;
} mcu_broadcast_params;

/* ---- maximum / minimum (mcu_minmax_s8.c) -------------------------------------------------------------- */
/* reference_ops::MaximumMinimumBroadcastSlow: raw int8 values compared (one shared quantization). */
mcu_status mcu_maximum_s8(const mcu_broadcast_params *params, const int8_t *input1, const int8_t *input2,
                          int8_t *output);
mcu_status mcu_minimum_s8(const mcu_broadcast_params *params, const int8_t *input1, const int8_t *input2,
                          int8_t *output);
/* int16 tensors, passed as bytes */
mcu_status mcu_maximum_s16(const mcu_broadcast_params *params, const int8_t *input1, const int8_t *input2,
                           int8_t *output);
mcu_status mcu_minimum_s16(const mcu_broadcast_params *params, const int8_t *input1, const int8_t *input2,
                           int8_t *output);

/* ---- prelu (mcu_prelu_s8.c) --------------------------------------------------------------------------- */
/* reference_ops::BroadcastPrelu4DSlow: input1 = x, input2 = alpha (broadcast). */
typedef struct {
    mcu_dims input1;
    mcu_dims input2;
    mcu_dims output;
    int32_t input_offset;
    int32_t alpha_offset;
    int32_t output_offset;
    mcu_quant positive_quant; /* s_in / s_out */
    mcu_quant negative_quant; /* s_in * s_alpha / s_out */
} mcu_prelu_params;

mcu_status mcu_prelu_s8(const mcu_prelu_params *params, const int8_t *input, const int8_t *alpha, int8_t *output);
/* int16 input and output (passed as bytes), int8 alpha */
mcu_status mcu_prelu_s16(const mcu_prelu_params *params, const int8_t *input, const int8_t *alpha, int8_t *output);

/* ---- squared difference (mcu_squared_difference_s8.c) -------------------------------------------------- */
/* TFLite Micro's int8 SquaredDifference: each input rescaled as ADD does (left shift 7, to 2 max(s1, s2)) --
 * tabulated at compile time, scaledN[(uint8_t)x] --, the difference squared and requantized by output_quant. */
typedef struct {
    mcu_dims input1;
    mcu_dims input2;
    mcu_dims output;
    int32_t output_offset;
    mcu_quant output_quant;
    const int32_t *scaled1; /* 256 entries, by the byte (uint8_t)x1 */
    const int32_t *scaled2; /* 256 entries, by the byte (uint8_t)x2 */
} mcu_squared_difference_params;

mcu_status mcu_squared_difference_s8(const mcu_squared_difference_params *params, const int8_t *input1,
                                     const int8_t *input2, int8_t *output);

/* int16 (16x8, zero points 0; tensors passed as bytes): inputs rescaled per element by input*_quant. */
typedef struct {
    mcu_dims input1;
    mcu_dims input2;
    mcu_dims output;
    mcu_quant input1_quant;
    mcu_quant input2_quant;
    mcu_quant output_quant;
} mcu_squared_difference_s16_params;

mcu_status mcu_squared_difference_s16(const mcu_squared_difference_s16_params *params, const int8_t *input1,
                                      const int8_t *input2, int8_t *output);

/* ---- div (mcu_div_s8.c) ------------------------------------------------------------------------------- */
/* reference_ops::DivElementwise: quotient through GetReciprocal, requantized by output_quant (s1 / (s2 s_out)). */
typedef struct {
    mcu_dims input1;
    mcu_dims input2;
    mcu_dims output;
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t output_offset;
    mcu_quant output_quant;
    mcu_activation act;
    const int32_t *recip;      /* 256 entries: GetReciprocal(|x2 + input2_offset|, 31), by the byte (uint8_t)x2 */
    const int8_t *recip_shift; /* 256 entries: its num_bits_over_unit */
} mcu_div_params;

mcu_status mcu_div_s8(const mcu_div_params *params, const int8_t *input1, const int8_t *input2, int8_t *output);

/* ---- L2 normalization (mcu_l2_normalization_s8.c) ------------------------------------------------------ */
/* reference_integer_ops::L2Normalization over the last axis; output scale 1/128, zero point 0. */
typedef struct {
    int32_t outer; /* number of rows: the product of all extents but the last */
    int32_t depth; /* the last extent (<= 2^15) */
    int32_t input_offset;
} mcu_l2_normalization_params;

mcu_status mcu_l2_normalization_s8(const mcu_l2_normalization_params *params, const int8_t *input, int8_t *output);

/* ---- cast (mcu_cast_s8.c) ---------------------------------------------------------------------------- */
/* static_cast between int8, int16 and int32 elements (1, 2 or 4 bytes; input and output passed as bytes). */
typedef struct {
    int32_t size;         /* number of elements */
    int32_t input_bytes;  /* 1, 2 or 4 */
    int32_t output_bytes; /* 1, 2 or 4 */
} mcu_cast_params;

mcu_status mcu_cast_s8(const mcu_cast_params *params, const int8_t *input, int8_t *output);

/* ---- tanh, int16 (mcu_tanh_s16.c) ------------------------------------------------------------------------ */
/* reference_integer_ops::Tanh for int16 (16x8 scheme); input and output are int16 tensors passed as bytes. */
typedef struct {
    int32_t size;
    int32_t input_multiplier;  /* a power-of-two input scale comes as 3 << shift with input_left_shift 0 */
    int32_t input_left_shift;  /* 0..30 */
    const uint16_t *sigmoid_table; /* 256 entries: TFLite's sigmoid_table_uint16 */
} mcu_tanh_s16_params;

mcu_status mcu_tanh_s16(const mcu_tanh_s16_params *params, const int8_t *input, int8_t *output);

/* ---- requantize and clamp, int16: RELU, RELU6, ABS (mcu_requant_clamp_s16.c) --------------------------- */
/* v = x + input_offset, |v| if take_abs, MultiplyByQuantizedMultiplier(v, quant) if rescale, + output_offset,
 * clamped to act; int16 input and output passed as bytes. */
typedef struct {
    int32_t size;
    int32_t input_offset;
    int32_t output_offset;
    int32_t take_abs;
    int32_t rescale;
    mcu_quant quant;
    mcu_activation act; /* int16 bounds */
} mcu_requant_clamp_params;

mcu_status mcu_requant_clamp_s16(const mcu_requant_clamp_params *params, const int8_t *input, int8_t *output);

/* ---- rsqrt, int16 (mcu_rsqrt_s16.c) ---------------------------------------------------------------------- */
/* RsqrtEvalQuantized<int16_t>; quant = 1 / (sqrt(s_in) s_out); int16 tensors passed as bytes. */
typedef struct {
    int32_t size;
    mcu_quant quant;
} mcu_rsqrt_s16_params;

mcu_status mcu_rsqrt_s16(const mcu_rsqrt_s16_params *params, const int8_t *input, int8_t *output);

/* ==== end of the ops8a block ========================================================================== */

#ifdef __cplusplus
}
#endif

#endif /* MCU_KERNELS_H */
