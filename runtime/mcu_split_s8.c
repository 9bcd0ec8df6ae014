/*
 * mcu_split_s8.c - int8 split of a tensor into consecutive pieces along one axis (SPLIT, SPLIT_V, UNPACK).
 *
 * Follows TFLite Micro's SPLIT / SPLIT_V / UNPACK (micro/kernels/split.cc, split_v.cc, unpack.cc): for each of
 * `outer` slices (the product of the extents before the axis), output i receives the next copy_size[i] bytes
 * of the input (its extent along the axis times the product of the extents after it) -- the inverse of
 * mcu_concat_s8. Values are moved, never changed. Portable C for every core.
 */
/* memcpy: a compiler builtin; the call it may become is resolved by the libc or by firmware/common/mcu_string.c */

#include "mcu_kernels.h"

mcu_status mcu_split_s8(const mcu_split_params *params, const int8_t *input, int8_t *const *outputs)
{
    int32_t k, i;

    if (params == NULL || input == NULL || outputs == NULL || params->copy_size == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    for (i = 0; i < params->num_outputs; i++) {
        if (outputs[i] == NULL) {
            return MCU_ERROR_ARGUMENT;
        }
    }
    for (k = 0; k < params->outer; k++) {
        for (i = 0; i < params->num_outputs; i++) {
            const int32_t n = params->copy_size[i];
            __builtin_memcpy(outputs[i] + (size_t)k * n, input, (size_t)n);
            input += n;
        }
    }
    return MCU_OK;
}
