/*
 * mcu_slice_s8.c - int8 slice of a tensor of rank <= 4: the block of output extents starting at begin[].
 *
 * Follows TFLite Micro's SLICE (micro/kernels/slice.cc, reference_ops::Slice): values are moved, never
 * changed (input and output share scale and zero point). A tensor of rank r < 4 is padded in front with
 * extents of 1 and begin 0 (mcutool/ops/slice.py does it). Innermost runs are copied whole. Portable C.
 */
/* memcpy: a compiler builtin; the call it may become is resolved by the libc or by firmware/common/mcu_string.c */

#include "mcu_kernels.h"

mcu_status mcu_slice_s8(const mcu_slice_params *params, const int8_t *input, int8_t *output)
{
    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const mcu_dims *in = &params->input, *out = &params->output;
        const int32_t *b = params->begin;
        int32_t n, h, w;
        if (b[0] < 0 || b[1] < 0 || b[2] < 0 || b[3] < 0 || b[0] + out->n > in->n || b[1] + out->h > in->h
            || b[2] + out->w > in->w || b[3] + out->c > in->c) {
            return MCU_ERROR_ARGUMENT;
        }
        for (n = 0; n < out->n; n++) {
            for (h = 0; h < out->h; h++) {
                for (w = 0; w < out->w; w++) {
                    const size_t at = (((size_t)(b[0] + n) * in->h + (size_t)(b[1] + h)) * in->w
                                       + (size_t)(b[2] + w)) * in->c + (size_t)b[3];
                    __builtin_memcpy(output, input + at, (size_t)out->c);
                    output += out->c;
                }
            }
        }
    }
    return MCU_OK;
}
