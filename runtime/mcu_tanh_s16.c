/*
 * mcu_tanh_s16.c - int16 tanh (TFLite's 16x8 scheme: zero points 0, output scale 2^-15).
 *
 * TFLite Micro's TANH for int16 (reference_integer_ops::Tanh): x' = (x * input_multiplier + round) >>
 * input_left_shift puts 10.7 at 2^17; |x'| indexes the 256-entry sigmoid table (high bits) and interpolates with
 * its low 8 bits; tanh(x) = 2 sigmoid(2x) - 1 is formed with TFLite's rounding and shifted back to Q0.15.
 * runtime_params passes a power-of-two input scale already as multiplier 3 << shift, shift 0.
 * The tensors are int16 (arena offsets are 8-byte aligned), passed as bytes like every kernel's.
 * Element i is read before it is written, so the output may overwrite the input. Portable C for every core.
 */
#include "mcu_kernels.h"

mcu_status mcu_tanh_s16(const mcu_tanh_s16_params *params, const int8_t *input, int8_t *output)
{
    const int16_t *in = (const int16_t *)(const void *)input;
    int16_t *out = (int16_t *)(void *)output;
    int32_t i, rnd;
    if (params == NULL || input == NULL || output == NULL || params->sigmoid_table == NULL
        || params->input_left_shift < 0 || params->input_left_shift > 30) {
        return MCU_ERROR_ARGUMENT;
    }
    rnd = params->input_left_shift > 0 ? (int32_t)1 << (params->input_left_shift - 1) : 0;
    for (i = 0; i < params->size; i++) {
        const int32_t x = (int32_t)(((int64_t)in[i] * params->input_multiplier + rnd) >> params->input_left_shift);
        const uint32_t a = (uint32_t)(x < 0 ? -x : x);
        const uint32_t uh = a >> 8;
        int32_t result;
        if (uh >= 255) {
            result = 0xFFFF << 8;
        } else {
            const uint32_t ua = params->sigmoid_table[uh];
            const uint32_t ub = params->sigmoid_table[uh + 1];
            result = (int32_t)((ua << 8) + (a & 0xFFu) * (ub - ua));
        }
        result = x >= 0 ? result - (1 << 23) + (1 << 7) : -result + (1 << 23) + (1 << 7) - 1;
        out[i] = (int16_t)(result >> 8);
    }
    return MCU_OK;
}
