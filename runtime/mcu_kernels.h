/*
 * mcu_kernels.h - mcutool's portable int8 kernels (TFLite int8 spec, NHWC), bit-exact with TFLite 2.14's
 * reference integer kernels (the BUILTIN_REF resolver of tflite-runtime, DESIGN.md section 6), and int16 ones
 * (TFLite's 16x8 scheme, zero points 0: mcu_<op>_s16, bit-exact with TFLite Micro's interpreter).
 *
 * One kernel family per file: runtime/mcu_<op>[_<case>]_s8.c. Every kernel has the same shape:
 *
 *     mcu_status mcu_<op>_s8(const mcu_<op>_params *params, <inputs>, int8_t *output);
 *
 * (a kernel with several outputs takes `int8_t *const *outputs`, as concatenation takes its inputs; arg_min_max
 * writes int32_t indices.)
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
 *   - in place: add (and sub), mul, softmax, lut/logistic, leaky relu and quantize (between equal-sized
 *     dtypes) may write their output over their first input
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

/* A loop body shared by a kernel's int8 and int16 entry points (given one pointer pair, the other NULL): inlined
 * into each, so that the element-type test is resolved at compile time. */
#define MCU_DTYPE_BODY static inline __attribute__((always_inline))

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
/* int16 (TFLite's 16x8 scheme), the same arithmetic (reference_integer_ops::AveragePool / MaxPool for int16) */
mcu_status mcu_avg_pool2d_s16(const mcu_pool_params *params, const int16_t *input, int16_t *output);
mcu_status mcu_max_pool2d_s16(const mcu_pool_params *params, const int16_t *input, int16_t *output);

/* ---- add and sub (mcu_add_s8.c, mcu_add_s16.c) ----------------------------------------------------- */
/* reference_integer_ops::Add / BroadcastAdd (int8), reference_ops::AddGeneralParamScale (int16) and
 * reference_ops::Sub / BroadcastQuantSubSlow (both): both inputs are shifted left by left_shift (20 for int8,
 * 15 for int16), rescaled to a common scale, added (subtracted: input1 - input2 when `subtract` is 1) and
 * requantized. An input extent of 1 broadcasts over the output's. */
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
    int32_t subtract; /* 0: ADD, 1: SUB */
} mcu_add_params;

mcu_status mcu_add_s8(const mcu_add_params *params, const int8_t *input1, const int8_t *input2,
                      int8_t *output);
mcu_status mcu_add_s16(const mcu_add_params *params, const int16_t *input1, const int16_t *input2,
                       int16_t *output);

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
/* int16 (zero points 0; mcu_mul_s16.c): the same with MUL's double-precision multiplier (mul_common.cc). */
mcu_status mcu_mul_s16(const mcu_mul_params *params, const int16_t *input1, const int16_t *input2,
                       int16_t *output);

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

/* reference_ops::SoftmaxInt16 (int16 in, int16 out with scale 1/32768, zero points 0; mcu_softmax_s16.c): input
 * differences scaled by (input_multiplier, input_shift) (MultiplyByQuantizedMultiplier), exp and the sum's
 * reciprocal read from TFLite Micro's two 513-entry tables. */
typedef struct {
    int32_t outer;
    int32_t depth;
    int32_t input_multiplier;
    int32_t input_shift;
    const int16_t *exp_lut;        /* exp over [-10, 0], Q0.15 */
    const int16_t *reciprocal_lut; /* 1 / (1 + x) over [0, 1], Q0.15 */
} mcu_softmax_s16_params;

mcu_status mcu_softmax_s16(const mcu_softmax_s16_params *params, const int16_t *input, int16_t *output);

/* ---- lookup table (mcu_lut_s8.c): logistic, and any other int8 -> int8 function -------------------- */
/* TFLite 2.14's int8 LOGISTIC (reference and optimized resolvers alike) is a 256-entry table filled at
 * Prepare time; mcutool fills the same table at compile time. table[(uint8_t)x] is the output for x. */
typedef struct {
    int32_t size;        /* number of elements */
    const int8_t *table; /* 256 entries, indexed by the input's two's-complement byte */
} mcu_lut_params;

mcu_status mcu_lut_s8(const mcu_lut_params *params, const int8_t *input, int8_t *output);
mcu_status mcu_logistic_s8(const mcu_lut_params *params, const int8_t *input, int8_t *output);

/* ---- int16 sigmoid / tanh (mcu_logistic_s16.c; the per-value functions in mcu_activation_s16.h) ------- */
/* reference_integer_ops::Logistic / Tanh for int16 (zero points 0, output 2^-15): the input scaled by
 * (input_multiplier, input_left_shift) as TFLite Micro's Prepare sets them (multiplier 0: 3 << shift). */
typedef struct {
    int32_t size;
    int32_t input_multiplier;
    int32_t input_left_shift;
} mcu_activation_s16_params;

mcu_status mcu_logistic_s16(const mcu_activation_s16_params *params, const int16_t *input, int16_t *output);

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
mcu_status mcu_pad_s16(const mcu_pad_params *params, const int16_t *input, int16_t *output);

/* ---- transpose (mcu_transpose_s8.c) ------------------------------------------------------------------ */
/* reference_ops::Transpose: output dim i is input dim perm[i]. Rank < 4 is padded in front with extents
 * of 1 and perm shifted accordingly (runtime_params does it). */
typedef struct {
    mcu_dims input;
    int32_t perm[4];
} mcu_transpose_params;

mcu_status mcu_transpose_s8(const mcu_transpose_params *params, const int8_t *input, int8_t *output);
mcu_status mcu_transpose_s16(const mcu_transpose_params *params, const int16_t *input, int16_t *output);

/* ---- mean (mcu_mean_s8.c: mcu_mean_s8, mcu_mean_s16) ---------------------------------------------------- */
/* reference_ops::QuantizedMeanOrSum (TFLite 2.14's int8 MEAN, any keep_dims): sum of (x + input_offset)
 * over the reduced axes, times quant (= in_scale / out_scale with 1/count folded into the multiplier as
 * TFLite does), plus output_offset, clamped to int8. axis_mask bit 0..3 = N, H, W, C reduced.
 * mcu_mean_s16: the same for int16 (zero points 0), clamped to int16. */
typedef struct {
    mcu_dims input;
    int32_t axis_mask;
    int32_t input_offset;
    int32_t output_offset;
    mcu_quant quant;
} mcu_mean_params;

mcu_status mcu_mean_s8(const mcu_mean_params *params, const int8_t *input, int8_t *output);
mcu_status mcu_mean_s16(const mcu_mean_params *params, const int16_t *input, int16_t *output);

/* ---- concatenation (mcu_concat_s8.c) ----------------------------------------------------------------- */
/* reference_ops::Concatenation: for each of `outer` slices, the inputs' blocks of copy_size[i] bytes one
 * after another (copy_size[i] = extent of input i along the axis * product of the extents after it).
 * Input i is copied as is when table[i] is NULL (same scale and zero point as the output), else mapped
 * through its 256-entry requantization table (table[i][(uint8_t)x]). An int16 concatenation (no tables: TFLite
 * Micro requires equal quantization) runs as a byte concatenation with copy sizes in bytes. */
typedef struct {
    int32_t num_inputs;
    int32_t outer;              /* product of the extents before the axis */
    const int32_t *copy_size;   /* num_inputs entries */
    const int8_t *const *table; /* num_inputs entries, NULL entries copy; the pointer itself may be NULL */
} mcu_concat_params;

mcu_status mcu_concat_s8(const mcu_concat_params *params, const int8_t *const *inputs, int8_t *output);

/* ---- quantize int -> int (mcu_quantize_s8.c) --------------------------------------------------------- */
/* reference_ops::Requantize: MultiplyByQuantizedMultiplier(x + input_offset) + output_offset, clamped to
 * act (the output dtype's range). Named by input dtype, then output dtype where it differs. */
typedef struct {
    int32_t size;
    int32_t input_offset;
    int32_t output_offset;
    mcu_quant quant;
    mcu_activation act;
} mcu_quantize_params;

mcu_status mcu_quantize_s8(const mcu_quantize_params *params, const int8_t *input, int8_t *output);
mcu_status mcu_quantize_s8_s16(const mcu_quantize_params *params, const int8_t *input, int16_t *output);
mcu_status mcu_quantize_s16_s8(const mcu_quantize_params *params, const int16_t *input, int8_t *output);
mcu_status mcu_quantize_s16(const mcu_quantize_params *params, const int16_t *input, int16_t *output);
mcu_status mcu_quantize_s16_s32(const mcu_quantize_params *params, const int16_t *input, int32_t *output);
mcu_status mcu_quantize_s32_s8(const mcu_quantize_params *params, const int32_t *input, int8_t *output);
mcu_status mcu_quantize_s32_s16(const mcu_quantize_params *params, const int32_t *input, int16_t *output);

/* ---- leaky relu int16 (mcu_leaky_relu_s16.c; int8 runs as a mcu_lut_s8 table) ----------------------- */
/* reference_ops::QuantizeLeakyRelu (zero points 0): MultiplyByQuantizedMultiplier(x, x >= 0 ? identity :
 * alpha), clamped to int16. */
typedef struct {
    int32_t size;
    mcu_quant identity;
    mcu_quant alpha;
} mcu_leaky_relu_params;

mcu_status mcu_leaky_relu_s16(const mcu_leaky_relu_params *params, const int16_t *input, int16_t *output);

/* ---- strided slice (mcu_strided_slice_s8.c, mcu_strided_slice_s16.c) --------------------------------- */
/* reference_ops::StridedSlice with the begin/end/shrink logic resolved at compile time: output element
 * (n, h, w, c) of the extents count[] is input element start[] + (n, h, w, c) * stride[] (NHWC; strides may
 * be negative). Rank < 4 is padded in front with start 0, stride 1, count 1. */
typedef struct {
    mcu_dims input;
    int32_t start[4];
    int32_t stride[4];
    int32_t count[4];
} mcu_strided_slice_params;

mcu_status mcu_strided_slice_s8(const mcu_strided_slice_params *params, const int8_t *input, int8_t *output);
mcu_status mcu_strided_slice_s16(const mcu_strided_slice_params *params, const int16_t *input, int16_t *output);

/* ---- SVDF, a stateful layer (mcu_svdf_s8.c) -------------------------------------------------------------- */
/* TFLite Micro's EvalIntegerSvdfReference: int8 input (batch x input_size) and output (batch x units); the state
 * (batch x filters x memory) persists across calls in model.c (mcu_model_reset() fills it) and has the time
 * weights' type: int8 for mcu_svdf_s8, int16 for mcu_svdf_state_s16_s8. filters = units * rank. */
typedef struct {
    int32_t batch;
    int32_t input_size;
    int32_t filters;
    int32_t units;
    int32_t rank;
    int32_t memory;
    int32_t input_offset;
    int32_t state_zero_point;
    int32_t output_offset;
    mcu_quant feature_quant; /* input x feature weights -> the state's scale */
    mcu_quant output_quant;  /* state x time weights -> the output's scale */
    const int8_t *weights_feature; /* filters x input_size */
    const void *weights_time;      /* filters x memory, int8_t or int16_t */
    const int32_t *bias;           /* units, or NULL */
    void *state;                   /* batch x filters x memory, int8_t or int16_t */
} mcu_svdf_params;

mcu_status mcu_svdf_s8(const mcu_svdf_params *params, const int8_t *input, int8_t *output);
mcu_status mcu_svdf_state_s16_s8(const mcu_svdf_params *params, const int8_t *input, int8_t *output);

/* ---- UNIDIRECTIONAL_SEQUENCE_LSTM, 8x8->16 (mcu_lstm_s8.c), a stateful layer ------------------------------- */
/* TFLite Micro's integer LSTM: int8 input (batch x time x input_size) and output (batch x time x units), int8
 * weights and int32 biases in gate order input, forget, cell, output; the int8 hidden and int16 cell states persist
 * in model.c (mcu_model_reset() fills them). Gate FCs requantize to Q3.12, the nonlinearities give Q0.15. */
typedef struct {
    int32_t batch;
    int32_t time_steps;
    int32_t input_size;
    int32_t units;
    int32_t input_offset;
    int32_t hidden_zero_point;
    const int8_t *weights_x;       /* 4 x units x input_size */
    const int8_t *weights_h;       /* 4 x units x units */
    const int32_t *bias;           /* 4 x units */
    const mcu_quant *input_fc;     /* 4: FC(input) -> Q3.12 */
    const mcu_quant *recurrent_fc; /* 4: FC(hidden) -> Q3.12 */
    mcu_quant forget_cell_mul;     /* forget gate x cell -> cell */
    mcu_quant input_mul;           /* input gate x cell gate -> cell */
    mcu_quant hidden_mul;          /* tanh(cell) x output gate -> hidden (int8) */
    int32_t cell_tanh_multiplier;  /* Tanh(cell)'s input scaling (lstm_eval.cc's Tanh) */
    int32_t cell_tanh_shift;
    int32_t cell_clip;             /* quantized cell clip; 0: none */
    int32_t cell_gate_sigmoid;     /* the cell gate's nonlinearity: 0 tanh, 1 sigmoid */
    int32_t reset_each_call;       /* 1: the states start from their reset values at every call (ONNX's LSTM) */
    int8_t *hidden;                /* batch x units */
    int16_t *cell;                 /* batch x units */
} mcu_lstm_params;

mcu_status mcu_lstm_s8(const mcu_lstm_params *params, const int8_t *input, int8_t *output);

/* TFLite's sigmoid_table_uint16 (mcu_tables.c): sigmoid(i / 24) in 0.16 fixed point. */
extern const uint16_t mcu_sigmoid_table_u16[256];

/* ---- data movement, ops8b: slice (mcu_slice_s8.c), split / split_v / unpack (mcu_split_s8.c), gather ---- */
/* PACK runs on mcu_concat_s8 (CONCATENATION of blocks, one per input). */

/* reference_ops::Slice: output[n][h][w][c] = input[begin[0] + n][begin[1] + h][begin[2] + w][begin[3] + c]. */
typedef struct {
    mcu_dims input;
    mcu_dims output;
    int32_t begin[4]; /* N, H, W, C */
} mcu_slice_params;

mcu_status mcu_slice_s8(const mcu_slice_params *params, const int8_t *input, int8_t *output);

/* SPLIT / SPLIT_V / UNPACK: for each of `outer` slices, output i receives the next copy_size[i] bytes. */
typedef struct {
    int32_t num_outputs;
    int32_t outer;            /* product of the extents before the axis */
    const int32_t *copy_size; /* num_outputs entries */
} mcu_split_params;

mcu_status mcu_split_s8(const mcu_split_params *params, const int8_t *input, int8_t *const *outputs);

/* TFLite Micro's GATHER with constant indices: for each batch, outer slice and index, `inner` bytes. */
typedef struct {
    int32_t batch;          /* product of the first batch_dims extents */
    int32_t outer;          /* product of the extents between batch_dims and the axis */
    int32_t axis_size;      /* extent of the gathered axis */
    int32_t coords;         /* indices per batch */
    int32_t inner;          /* product of the extents after the axis */
    const int32_t *indices; /* batch * coords entries in [0, axis_size) */
} mcu_gather_params;

mcu_status mcu_gather_s8(const mcu_gather_params *params, const int8_t *input, int8_t *output);

/* DEPTH_TO_SPACE and SPACE_TO_DEPTH run on mcu_transpose_s8 (a transpose of the middle axes of a 4-D view). */

/* ---- resize, ops8b (mcu_resize_nearest_neighbor_s8.c, mcu_resize_bilinear_s8.c) ------------------------- */
/* reference_ops::ResizeNearestNeighbor: output (n, y, x) copies input (n, in_y[y], in_x[x]) (tables from
 * TFLite's float GetNearestNeighbor, computed at compile time). Input and output share N and C. */
typedef struct {
    mcu_dims input;
    mcu_dims output;
    const int32_t *in_y; /* output.h entries */
    const int32_t *in_x; /* output.w entries */
} mcu_resize_nearest_neighbor_params;

mcu_status mcu_resize_nearest_neighbor_s8(const mcu_resize_nearest_neighbor_params *params, const int8_t *input,
                                          int8_t *output);

/* reference_ops::ResizeBilinearInteger: rows y0[y], y1[y] with 10-bit fraction fy[y] (may be negative with
 * half-pixel centers, as in TFLite), columns x0, x1, fx likewise; 20-bit weights, rounded half away from 0. */
typedef struct {
    mcu_dims input;
    mcu_dims output;
    const int32_t *y0, *y1, *fy; /* output.h entries each */
    const int32_t *x0, *x1, *fx; /* output.w entries each */
} mcu_resize_bilinear_params;

mcu_status mcu_resize_bilinear_s8(const mcu_resize_bilinear_params *params, const int8_t *input, int8_t *output);

/* ---- reductions, ops8b: reduce_max (mcu_reduce_max_s8.c), arg_max / arg_min (mcu_arg_min_max_s8.c) ------ */
/* SUM runs on mcu_mean_s8 (QuantizedMeanOrSum with compute_sum: the multiplier is s_in / s_out, unfolded). */

/* reference_ops::ReduceGeneric with max: input and output share scale and zero point. axis_mask bit 0..3 =
 * N, H, W, C reduced. */
typedef struct {
    mcu_dims input;
    int32_t axis_mask;
} mcu_reduce_params;

mcu_status mcu_reduce_max_s8(const mcu_reduce_params *params, const int8_t *input, int8_t *output);

/* reference_ops::ArgMinMax: int32 index along the axis of the max (is_min 0) or min (1); first on ties. */
typedef struct {
    int32_t outer;     /* product of the extents before the axis */
    int32_t axis_size;
    int32_t inner;     /* product of the extents after the axis */
    int32_t is_min;
} mcu_arg_min_max_params;

mcu_status mcu_arg_min_max_s8(const mcu_arg_min_max_params *params, const int8_t *input, int32_t *output);

/* ---- batch matmul, ops8b (mcu_batch_matmul_s8.c) ---------------------------------------------------------- */
/* reference_ops::BatchMatMul (int8): per matrix, sum_k (lhs(i,k) + lhs_offset) * (rhs(k,j) + rhs_offset),
 * requantized, + output_offset, clamped. A constant operand is passed as its array like an activation. */
typedef struct {
    int32_t batch[2];      /* the output's two batch extents (rank < 4 padded with 1) */
    int32_t lhs_stride[2]; /* elements between lhs matrices along each batch axis; 0 broadcasts */
    int32_t rhs_stride[2];
    int32_t rows;          /* output rows (i) */
    int32_t cols;          /* output columns (j) */
    int32_t depth;         /* the summed extent (k) */
    int32_t adj_x;         /* lhs stored [k][i] */
    int32_t adj_y;         /* rhs stored [j][k] */
    int32_t lhs_offset;    /* -zp_lhs */
    int32_t rhs_offset;    /* -zp_rhs */
    int32_t output_offset;
    mcu_quant quant;
} mcu_batch_matmul_params;

mcu_status mcu_batch_matmul_s8(const mcu_batch_matmul_params *params, const int8_t *lhs, const int8_t *rhs,
                               int8_t *output);

/* ---- convolutions with hand-written kernels: 16x8 conv, transpose conv ------------------------------ */
/* (int8 conv / depthwise / fully connected kernels are generated by TVM.) One parameter struct for all:
 *   mcu_conv2d_s16            reference_integer_ops::ConvPerChannel, int16 input/output, int8 weights
 *                             (TFLite's 16x8 scheme, zero points 0) (mcu_conv2d_s16.c); also the 16x8
 *                             FULLY_CONNECTED, as a 1x1 conv over (batches, 1, 1, input size)
 *   mcu_depthwise_conv2d_s16  reference_integer_ops::DepthwiseConvPerChannel, 16x8, int64 bias; weights
 *                             (1, kh, kw, output channels) (mcu_depthwise_conv2d_s16.c)
 *   mcu_transpose_conv2d_s8   reference_integer_ops::TransposeConv, int8 (mcu_transpose_conv2d_s8.c)
 *   mcu_transpose_conv2d_s16  its int16 template with TFLM's int64 scratch (mcu_transpose_conv2d_s16.c)
 * Weights are (out channels, kh, kw, in channels). A conv reads input (oy * stride - pad + k * dilation); a
 * transpose conv adds input pixel (iy, ix) into output (iy * stride - pad + k), dropping what falls outside;
 * the transpose kernels compute each output directly from the taps that reach it (no scratch buffer).
 * Accumulators: int32 (wrapping) for int8, and for the 16x8 conv with an int32 bias (bias32); otherwise
 * int64 with bias64 (NULL: no bias) and mcu_requantize_s64. Per output channel: multiplier[c], shift[c]. */
typedef struct {
    mcu_dims input;
    mcu_dims filter; /* n = output channels, h = kh, w = kw, c = input channels */
    mcu_dims output;
    int32_t stride_h;
    int32_t stride_w;
    int32_t dilation_h; /* 1 for a transpose conv */
    int32_t dilation_w;
    int32_t pad_top;
    int32_t pad_left;
    int32_t input_offset;  /* -(input zero point); 0 for int16 */
    int32_t output_offset; /* output zero point; 0 for int16 */
    mcu_activation act;
    const int8_t *weights;
    const int32_t *bias32; /* int32 bias or NULL */
    const int64_t *bias64; /* int64 bias or NULL (16x8 only) */
    const int32_t *multiplier;
    const int32_t *shift;
} mcu_conv_params;

mcu_status mcu_conv2d_s16(const mcu_conv_params *params, const int16_t *input, int16_t *output);
mcu_status mcu_depthwise_conv2d_s16(const mcu_conv_params *params, const int16_t *input, int16_t *output);
mcu_status mcu_transpose_conv2d_s8(const mcu_conv_params *params, const int8_t *input, int8_t *output);
mcu_status mcu_transpose_conv2d_s16(const mcu_conv_params *params, const int16_t *input, int16_t *output);
/* int8 activations with packed int4 weights (TFLite's INT4, issue 15), `weights` pointing at the packed bytes
 * (mcutool/ops/int4_weights.py lays them out; each file's header says how), bias32 or NULL:
 *   mcu_conv2d_s4            CONV_2D, and FULLY_CONNECTED as a 1x1 conv (mcu_conv2d_s4.c)
 *   mcu_depthwise_conv2d_s4  DEPTHWISE_CONV_2D (mcu_depthwise_conv2d_s4.c) */
mcu_status mcu_conv2d_s4(const mcu_conv_params *params, const int8_t *input, int8_t *output);
mcu_status mcu_depthwise_conv2d_s4(const mcu_conv_params *params, const int8_t *input, int8_t *output);

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
