/*
 * mcu_arg_min_max_s8.c - ARG_MAX / ARG_MIN of int8 values along one axis, int32 indices out.
 *
 * Follows TFLite Micro's ARG_MAX / ARG_MIN (micro/kernels/arg_min_max.cc, reference_ops::ArgMinMax): for each
 * (outer, inner) position, the index along the axis of the largest (is_min = 0) or smallest (is_min = 1)
 * value; a later value must be strictly better to win, so ties give the first index. Raw int8 values are
 * compared (the quantization is monotonic). Portable C for every core.
 */
#include "mcu_kernels.h"

mcu_status mcu_arg_min_max_s8(const mcu_arg_min_max_params *params, const int8_t *input, int32_t *output)
{
    int32_t o, i, k;

    if (params == NULL || input == NULL || output == NULL || params->axis_size < 1) {
        return MCU_ERROR_ARGUMENT;
    }
    for (o = 0; o < params->outer; o++) {
        const int8_t *block = input + (size_t)o * params->axis_size * params->inner;
        for (i = 0; i < params->inner; i++) {
            int8_t best = block[i];
            int32_t index = 0;
            for (k = 1; k < params->axis_size; k++) {
                const int8_t v = block[(size_t)k * params->inner + (size_t)i];
                if (params->is_min ? v < best : v > best) {
                    best = v;
                    index = k;
                }
            }
            *output++ = index;
        }
    }
    return MCU_OK;
}
