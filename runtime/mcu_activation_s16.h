/*
 * mcu_activation_s16.h - TFLite's int16 sigmoid and tanh of one value (reference_integer_ops::Logistic and Tanh
 * for int16, kernels/internal/reference/integer_ops/logistic.h and tanh.h): the input scaled by
 * (input_multiplier, input_left_shift) -- a multiplier of 0 means 3 << shift with no shift, the power-of-two
 * input scale case -- then TFLite's 256-entry sigmoid table (mcu_sigmoid_table_u16, sigmoid(i / 24) in 0.16)
 * interpolated: 9 fraction bits for the sigmoid, 8 for tanh(x) = 2 sigmoid(2x) - 1. Output Q0.15.
 * Used by the int16 LOGISTIC kernel and the LSTM's gates. Static inline, no floating point.
 */
#ifndef MCU_ACTIVATION_S16_H
#define MCU_ACTIVATION_S16_H

#include "mcu_kernels.h"

static inline int32_t mcu_sigmoid_tanh_scale_s16(int32_t x, int32_t multiplier, int32_t shift)
{
    if (multiplier == 0) {
        multiplier = 3 << shift;
        shift = 0;
    }
    return (x * multiplier + (shift > 0 ? 1 << (shift - 1) : 0)) >> shift;
}

/* The table interpolated at |v| with `bits` fraction bits; `saturated` past its end. */
static inline uint32_t mcu_sigmoid_table_interp(uint32_t a, int bits, uint32_t saturated)
{
    const uint32_t uh = a >> bits;
    if (uh >= 255u) {
        return saturated;
    }
    return (mcu_sigmoid_table_u16[uh] << bits)
           + (a & ((1u << bits) - 1u)) * (uint32_t)(mcu_sigmoid_table_u16[uh + 1u] - mcu_sigmoid_table_u16[uh]);
}

static inline int16_t mcu_logistic_value_s16(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t v = mcu_sigmoid_tanh_scale_s16(x, multiplier, shift);
    uint32_t r = mcu_sigmoid_table_interp((uint32_t)(v < 0 ? -v : v), 9, 0x7FFFu << 10);
    r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
    return (int16_t)(r >> 10);
}

static inline int16_t mcu_tanh_value_s16(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t v = mcu_sigmoid_tanh_scale_s16(x, multiplier, shift);
    int32_t r = (int32_t)mcu_sigmoid_table_interp((uint32_t)(v < 0 ? -v : v), 8, 0xFFFFu << 8);
    r = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
    return (int16_t)(r >> 8);
}

#endif /* MCU_ACTIVATION_S16_H */
