/*
 * mcu_gather_s8.c - int8 gather of slices along one axis by constant int32 indices.
 *
 * Follows TFLite Micro's GATHER (micro/kernels/gather.cc): for each batch, each outer slice and each index,
 * the `inner` bytes at input[((batch * outer + o) * axis_size + index) * inner] are copied to the output in
 * order. Indices outside [0, axis_size) fail, as in TFLite Micro (mcutool checks them at compile time).
 * Values are moved, never changed. Portable C for every core.
 */
/* memcpy: a compiler builtin; the call it may become is resolved by the libc or by firmware/common/mcu_string.c */

#include "mcu_kernels.h"

mcu_status mcu_gather_s8(const mcu_gather_params *params, const int8_t *input, int8_t *output)
{
    int32_t b, o, k;

    if (params == NULL || input == NULL || output == NULL || params->indices == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    for (b = 0; b < params->batch; b++) {
        for (o = 0; o < params->outer; o++) {
            const int8_t *slice = input + ((size_t)b * params->outer + (size_t)o) * params->axis_size
                                              * params->inner;
            for (k = 0; k < params->coords; k++) {
                const int32_t index = params->indices[b * params->coords + k];
                if (index < 0 || index >= params->axis_size) {
                    return MCU_ERROR_ARGUMENT;
                }
                __builtin_memcpy(output, slice + (size_t)index * params->inner, (size_t)params->inner);
                output += params->inner;
            }
        }
    }
    return MCU_OK;
}
