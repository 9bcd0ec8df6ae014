/*
 * mcu_strided_slice_s16.c - int16 strided slice of a tensor of rank <= 4 (NHWC).
 *
 * Follows TFLite Micro's strided_slice.cc (reference_ops::StridedSlice, kernels/internal/reference/
 * strided_slice.h): the begin/end/stride resolution of strided_slice_logic.h (negative indices, clamping,
 * begin/end/shrink-axis masks) is done at compile time, so the kernel walks the output in row-major order:
 *
 *   output[n][h][w][c] = input[start[0] + n * stride[0]][start[1] + h * stride[1]]...  for n < count[0], ...
 *
 * Strides may be negative. Values are copied unchanged (input and output share quantization). Portable C.
 */
#include "mcu_kernels.h"

mcu_status mcu_strided_slice_s16(const mcu_strided_slice_params *params, const int16_t *input, int16_t *output)
{
    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const int32_t in_d[4] = {params->input.n, params->input.h, params->input.w, params->input.c};
        const int32_t *start = params->start, *stride = params->stride, *count = params->count;
        int32_t k, n, h, w, c;
        for (k = 0; k < 4; k++) {
            const int32_t last = start[k] + (count[k] - 1) * stride[k];
            if (count[k] < 0 || (count[k] > 0 && (start[k] < 0 || start[k] >= in_d[k] || last < 0 || last >= in_d[k]))) {
                return MCU_ERROR_ARGUMENT;
            }
        }
        for (n = 0; n < count[0]; n++) {
            const int32_t in_n = start[0] + n * stride[0];
            for (h = 0; h < count[1]; h++) {
                const int32_t in_h = in_n * in_d[1] + start[1] + h * stride[1];
                for (w = 0; w < count[2]; w++) {
                    const int16_t *row = input + ((size_t)in_h * in_d[2] + (size_t)(start[2] + w * stride[2])) * in_d[3];
                    for (c = 0; c < count[3]; c++) {
                        *output++ = row[start[3] + c * stride[3]];
                    }
                }
            }
        }
    }
    return MCU_OK;
}
