/*
 * mcu_concat_s8.c - int8 concatenation along any axis, requantizing inputs whose quantization differs.
 *
 * Follows TFLite 2.14 reference_ops::Concatenation (kernels/internal/reference/concatenation.h): for each
 * of `outer` slices, each input's block of copy_size[i] bytes in input order. TFLite's int8 CONCATENATION
 * requires every input to share the output's scale and zero point (concatenation.cc Prepare fails
 * otherwise; the converter inserts an int8 -> int8 QUANTIZE in front of such inputs). mcutool folds that
 * QUANTIZE (reference_ops::Requantize) into a 256-entry table per differing input (computed by
 * runtime_params), so input i is copied when table[i] is NULL and mapped through table[i] otherwise.
 * Portable C for every core.
 */
/* memcpy/memset: compiler builtins; the call they may become is resolved by the libc or by firmware/common/mcu_string.c */

#include "mcu_kernels.h"

mcu_status mcu_concat_s8(const mcu_concat_params *params, const int8_t *const *inputs, int8_t *output)
{
    int32_t k, i, j;

    if (params == NULL || inputs == NULL || output == NULL || params->copy_size == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    for (i = 0; i < params->num_inputs; i++) {
        if (inputs[i] == NULL) {
            return MCU_ERROR_ARGUMENT;
        }
    }
    for (k = 0; k < params->outer; k++) {
        for (i = 0; i < params->num_inputs; i++) {
            const int32_t n = params->copy_size[i];
            const int8_t *src = inputs[i] + (size_t)k * n;
            const int8_t *table = params->table != NULL ? params->table[i] : NULL;
            if (table == NULL) {
                __builtin_memcpy(output, src, (size_t)n);
            } else {
                for (j = 0; j < n; j++) {
                    output[j] = table[(uint8_t)src[j]];
                }
            }
            output += n;
        }
    }
    return MCU_OK;
}
