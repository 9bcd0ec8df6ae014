/*
 * mcu_lut_s8.c - int8 -> int8 functions as a 256-entry lookup table: logistic (and any other).
 *
 * TFLite 2.14's int8 LOGISTIC, in both the reference (BUILTIN_REF) and the optimized resolver, is
 * SigmoidPrepare's LUTPopulate<int8_t> (a table of round(sigmoid(s_in * (q - zp_in)) / s_out) + zp_out,
 * clamped, computed in float at Prepare time) followed by a plain lookup (reference_integer_ops::
 * LookupTable / optimized_integer_ops::LookupTable, kernels/internal/reference/integer_ops/lut.h).
 * mcutool computes the same table at compile time (mcutool/codegen/runtime_params.py) and the firmware
 * only looks it up: table[(uint8_t)x]. Portable C for every core.
 */
#include "mcu_kernels.h"

mcu_status mcu_lut_s8(const mcu_lut_params *params, const int8_t *input, int8_t *output)
{
    int32_t i;

    if (params == NULL || params->table == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    for (i = 0; i < params->size; i++) {
        output[i] = params->table[(uint8_t)input[i]];
    }
    return MCU_OK;
}

mcu_status mcu_logistic_s8(const mcu_lut_params *params, const int8_t *input, int8_t *output)
{
    return mcu_lut_s8(params, input, output);
}
