/*
 * mcu_batch_matmul_s8.c - int8 batched matrix product with TFLite's requantization.
 *
 * Follows TFLite Micro's int8 BATCH_MATMUL (micro/kernels/batch_matmul.cc EvalInt8 ->
 * reference_ops::BatchMatMul): for each of batch[0] x batch[1] matrices,
 *
 *   acc[i][j] = sum_k (lhs(i, k) + lhs_offset) * (rhs(k, j) + rhs_offset)           (int32)
 *   out[i][j] = clamp(MultiplyByQuantizedMultiplier(acc, quant) + output_offset, -128, 127)
 *
 * lhs(i, k) is lhs[i * depth + k], or lhs[k * rows + i] when adj_x; rhs(k, j) is rhs[k * cols + j], or
 * rhs[j * depth + k] when adj_y. A batch axis of extent 1 in an operand broadcasts (its stride is 0).
 * The output is written row by row. Portable C for every core.
 */
#include "mcu_kernels.h"

mcu_status mcu_batch_matmul_s8(const mcu_batch_matmul_params *params, const int8_t *lhs, const int8_t *rhs,
                               int8_t *output)
{
    int32_t b0, b1, i, j, k;

    if (params == NULL || lhs == NULL || rhs == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    for (b0 = 0; b0 < params->batch[0]; b0++) {
        for (b1 = 0; b1 < params->batch[1]; b1++) {
            const int8_t *a = lhs + (size_t)b0 * params->lhs_stride[0] + (size_t)b1 * params->lhs_stride[1];
            const int8_t *b = rhs + (size_t)b0 * params->rhs_stride[0] + (size_t)b1 * params->rhs_stride[1];
            for (i = 0; i < params->rows; i++) {
                for (j = 0; j < params->cols; j++) {
                    int32_t acc = 0;
                    int32_t v;
                    for (k = 0; k < params->depth; k++) {
                        const int32_t x = params->adj_x ? a[(size_t)k * params->rows + (size_t)i]
                                                        : a[(size_t)i * params->depth + (size_t)k];
                        const int32_t y = params->adj_y ? b[(size_t)j * params->depth + (size_t)k]
                                                        : b[(size_t)k * params->cols + (size_t)j];
                        acc += (x + params->lhs_offset) * (y + params->rhs_offset);
                    }
                    v = mcu_requantize(acc, params->quant.multiplier, params->quant.shift) + params->output_offset;
                    *output++ = (int8_t)mcu_clamp_i32(v, -128, 127);
                }
            }
        }
    }
    return MCU_OK;
}
