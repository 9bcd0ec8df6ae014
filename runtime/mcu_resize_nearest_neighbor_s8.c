/*
 * mcu_resize_nearest_neighbor_s8.c - int8 nearest-neighbour resize of an NHWC tensor over H and W.
 *
 * Follows TFLite Micro's RESIZE_NEAREST_NEIGHBOR (reference_ops::ResizeNearestNeighbor): output pixel (y, x)
 * is a copy of input pixel (in_y[y], in_x[x]). TFLite computes those source coordinates in float
 * (GetNearestNeighbor); mcutool computes the same float arithmetic at compile time into the two tables, so
 * this kernel has no floating point. Values are moved, never changed. Portable C for every core.
 */
/* memcpy: a compiler builtin; the call it may become is resolved by the libc or by firmware/common/mcu_string.c */

#include "mcu_kernels.h"

mcu_status mcu_resize_nearest_neighbor_s8(const mcu_resize_nearest_neighbor_params *params, const int8_t *input,
                                          int8_t *output)
{
    int32_t b, y, x;

    if (params == NULL || input == NULL || output == NULL || params->in_y == NULL || params->in_x == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const mcu_dims *in = &params->input, *out = &params->output;
        const size_t depth = (size_t)in->c;
        for (b = 0; b < out->n; b++) {
            const int8_t *image = input + (size_t)b * in->h * in->w * depth;
            for (y = 0; y < out->h; y++) {
                const int8_t *row = image + (size_t)params->in_y[y] * in->w * depth;
                for (x = 0; x < out->w; x++) {
                    __builtin_memcpy(output, row + (size_t)params->in_x[x] * depth, depth);
                    output += depth;
                }
            }
        }
    }
    return MCU_OK;
}
