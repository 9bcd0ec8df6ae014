/*
 * mcu_pad_s16.c - int16 constant padding of a tensor of rank <= 4 (NHWC order of the pads).
 *
 * Follows TFLite Micro's pad.cc for int16 (reference_ops::Pad, kernels/internal/reference/pad.h): every output
 * element outside [pad_before, pad_before + input extent) in some dimension is pad_value (the output zero
 * point, 0 in TFLite's 16x8 scheme), the rest is the input, copied as is. The innermost extent (C) is filled
 * and copied element by element; whole W * C lines are copied with memcpy when the channels are not padded.
 * Portable C for every core.
 */
#include "mcu_kernels.h"

static void mcu_pad_fill_s16(int16_t *out, int16_t value, int32_t count)
{
    int32_t i;
    for (i = 0; i < count; i++) {
        out[i] = value;
    }
}

mcu_status mcu_pad_s16(const mcu_pad_params *params, const int16_t *input, int16_t *output)
{
    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const int32_t in_d[4] = {params->input.n, params->input.h, params->input.w, params->input.c};
        const int32_t out_d[4] = {params->output.n, params->output.h, params->output.w, params->output.c};
        const int32_t *before = params->pad_before;
        const int16_t pad = (int16_t)params->pad_value;
        const int32_t after_c = out_d[3] - before[3] - in_d[3];
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
                int16_t *out_line = output + ((size_t)b * out_d[1] + y) * out_d[2] * out_d[3];
                const int16_t *in_line =
                    y_in ? input + ((size_t)(b - before[0]) * in_d[1] + (y - before[1])) * in_d[2] * in_d[3] : NULL;
                if (!y_in) {
                    mcu_pad_fill_s16(out_line, pad, out_d[2] * out_d[3]);
                } else if (out_d[3] == in_d[3]) {
                    /* no padding along channels: a line is left pad, the input line, right pad */
                    const int32_t left = before[2] * out_d[3], middle = in_d[2] * in_d[3];
                    mcu_pad_fill_s16(out_line, pad, left);
                    __builtin_memcpy(out_line + left, in_line, (size_t)middle * sizeof(int16_t));
                    mcu_pad_fill_s16(out_line + left + middle, pad, out_d[2] * out_d[3] - left - middle);
                } else {
                    for (x = 0; x < out_d[2]; x++) {
                        int16_t *out_row = out_line + (size_t)x * out_d[3];
                        if (x >= before[2] && x < before[2] + in_d[2]) {
                            mcu_pad_fill_s16(out_row, pad, before[3]);
                            __builtin_memcpy(out_row + before[3], in_line + (size_t)(x - before[2]) * in_d[3],
                                             (size_t)in_d[3] * sizeof(int16_t));
                            mcu_pad_fill_s16(out_row + before[3] + in_d[3], pad, after_c);
                        } else {
                            mcu_pad_fill_s16(out_row, pad, out_d[3]);
                        }
                    }
                }
            }
        }
    }
    return MCU_OK;
}
