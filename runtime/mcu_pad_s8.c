/*
 * mcu_pad_s8.c - int8 constant padding of a tensor of rank <= 4 (NHWC order of the pads).
 *
 * Follows TFLite 2.14 reference_ops::Pad / PadImpl (kernels/internal/reference/pad.h) as pad.cc calls it for
 * int8: every output element outside [pad_before, pad_before + input extent) in some dimension is
 * pad_value (the output zero point for PAD; the constant for PADV2), the rest is the input, copied as is
 * (PAD keeps scale and zero point). Whole lines (W * C bytes) are copied with memcpy when the channels are
 * not padded, else rows of the innermost dimension.
 * Portable C for every core.
 */
/* memcpy/memset: compiler builtins; the call they may become is resolved by the libc or by firmware/common/mcu_string.c */

#include "mcu_kernels.h"

mcu_status mcu_pad_s8(const mcu_pad_params *params, const int8_t *input, int8_t *output)
{
    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const int32_t in_d[4] = {params->input.n, params->input.h, params->input.w, params->input.c};
        const int32_t out_d[4] = {params->output.n, params->output.h, params->output.w, params->output.c};
        const int32_t *before = params->pad_before;
        const int8_t pad = (int8_t)params->pad_value;
        int32_t k, b, y, x;
        for (k = 0; k < 4; k++) {
            if (before[k] < 0 || before[k] + in_d[k] > out_d[k]) {
                return MCU_ERROR_ARGUMENT;
            }
        }
        for (b = 0; b < out_d[0]; b++) {
            const int b_in = b >= before[0] && b < before[0] + in_d[0];
            for (y = 0; y < out_d[1]; y++) {
                const int y_in = b_in && y >= before[1] && y < before[1] + in_d[1];
                int8_t *out_line = output + ((size_t)b * out_d[1] + y) * out_d[2] * out_d[3];
                if (!y_in) {
                    __builtin_memset(out_line, pad, (size_t)out_d[2] * out_d[3]);
                } else if (out_d[3] == in_d[3]) {
                    /* no padding along channels: a line is left pad, the input line, right pad */
                    const int8_t *in_line = input + ((size_t)(b - before[0]) * in_d[1] + (y - before[1])) * in_d[2] * in_d[3];
                    const size_t left = (size_t)before[2] * out_d[3], middle = (size_t)in_d[2] * in_d[3];
                    __builtin_memset(out_line, pad, left);
                    __builtin_memcpy(out_line + left, in_line, middle);
                    __builtin_memset(out_line + left + middle, pad, (size_t)out_d[2] * out_d[3] - left - middle);
                } else {
                    for (x = 0; x < out_d[2]; x++) {
                        int8_t *out_row = out_line + (size_t)x * out_d[3];
                        if (x >= before[2] && x < before[2] + in_d[2]) {
                            const int8_t *in_row =
                                input + (((size_t)(b - before[0]) * in_d[1] + (y - before[1])) * in_d[2]
                                         + (x - before[2])) * in_d[3];
                            const int32_t after = out_d[3] - before[3] - in_d[3];
                            __builtin_memset(out_row, pad, (size_t)before[3]);
                            __builtin_memcpy(out_row + before[3], in_row, (size_t)in_d[3]);
                            __builtin_memset(out_row + before[3] + in_d[3], pad, (size_t)after);
                        } else {
                            __builtin_memset(out_row, pad, (size_t)out_d[3]);
                        }
                    }
                }
            }
        }
    }
    return MCU_OK;
}
