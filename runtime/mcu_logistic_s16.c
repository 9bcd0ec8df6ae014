/*
 * mcu_logistic_s16.c - LOGISTIC int16 -> int16 (TFLite's 16x8 scheme: zero points 0, output scale 2^-15), as
 * TFLite Micro runs it: reference_integer_ops::Logistic for int16 with LogisticPrepare's input multiplier and
 * shift (micro/kernels/logistic_common.cc, computed at compile time), per element (mcu_activation_s16.h).
 * Element i is read before it is written, so the output may be the input. Portable C.
 */
#include "mcu_activation_s16.h"
#include "mcu_kernels.h"

mcu_status mcu_logistic_s16(const mcu_activation_s16_params *params, const int16_t *input, int16_t *output)
{
    int32_t i;
    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    for (i = 0; i < params->size; i++) {
        output[i] = mcu_logistic_value_s16(input[i], params->input_multiplier, params->input_left_shift);
    }
    return MCU_OK;
}
