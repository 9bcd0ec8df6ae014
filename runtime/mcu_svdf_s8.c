/*
 * mcu_svdf_s8.c - SVDF with int8 input and output and a persistent int8 or int16 state (a stateful layer).
 *
 * Follows TFLite Micro's EvalIntegerSvdfReference (micro/kernels/svdf_common.cc) step by step:
 *   1. the state (batch x filters x memory, row-major) moves left by one element as one buffer;
 *   2. per filter f: dot = sum_c w_feature[f][c] * (x[c] - zp_in), requantized to the state's scale, plus the
 *      state's zero point, clamped to the state type, becomes state[f][memory - 1];
 *   3. per unit u: acc = bias[u] + sum over its `rank` filters f of sum_j w_time[f][j] * (state[f][j] - zp_state),
 *      requantized to the output, plus the output zero point, clamped to int8 (no fused activation, as TFLite
 *      Micro's integer path).
 * The int32 sums wrap as TFLite Micro's do in practice (accumulated as uint32 here, so the C is defined). Each unit
 * is computed directly from its filters, so no scratch buffer is needed. Two entry points: mcu_svdf_s8 (int8
 * state and time weights) and mcu_svdf_state_s16_s8 (int16 state and time weights), one body.
 */
#include "mcu_kernels.h"

#define MCU_SVDF_BODY(STATE_T, STATE_MIN, STATE_MAX)                                                           \
    const int32_t n = params->memory;                                                                         \
    const int32_t per_batch = params->filters * n;                                                            \
    STATE_T *state = (STATE_T *)params->state;                                                                \
    const STATE_T *w_time = (const STATE_T *)params->weights_time;                                            \
    int32_t b, f, u, r, j, c;                                                                                 \
    if (params->rank <= 0 || params->units * params->rank != params->filters) {                               \
        return MCU_ERROR_ARGUMENT;                                                                            \
    }                                                                                                         \
    for (j = 0; j + 1 < params->batch * per_batch; j++) {                                                     \
        state[j] = state[j + 1];                                                                              \
    }                                                                                                         \
    for (b = 0; b < params->batch; b++) {                                                                     \
        const int8_t *x = input + b * params->input_size;                                                     \
        STATE_T *s = state + b * per_batch;                                                                   \
        for (f = 0; f < params->filters; f++) {                                                               \
            const int8_t *w = params->weights_feature + f * params->input_size;                               \
            uint32_t dot = 0;                                                                                 \
            for (c = 0; c < params->input_size; c++) {                                                        \
                dot += (uint32_t)((int32_t)w[c] * ((int32_t)x[c] + params->input_offset));                    \
            }                                                                                                 \
            int32_t v = mcu_requantize((int32_t)dot, params->feature_quant.multiplier,                        \
                                       params->feature_quant.shift) + params->state_zero_point;               \
            s[f * n + n - 1] = (STATE_T)mcu_clamp_i32(v, STATE_MIN, STATE_MAX);                               \
        }                                                                                                     \
        for (u = 0; u < params->units; u++) {                                                                 \
            uint32_t acc = params->bias != NULL ? (uint32_t)params->bias[u] : 0u;                             \
            for (r = 0; r < params->rank; r++) {                                                              \
                const int32_t filter = u * params->rank + r;                                                  \
                const STATE_T *wt = w_time + filter * n;                                                      \
                const STATE_T *sf = s + filter * n;                                                           \
                for (j = 0; j < n; j++) {                                                                     \
                    acc += (uint32_t)((int32_t)wt[j] * ((int32_t)sf[j] - params->state_zero_point));          \
                }                                                                                             \
            }                                                                                                 \
            int32_t y = mcu_requantize((int32_t)acc, params->output_quant.multiplier,                         \
                                       params->output_quant.shift) + params->output_offset;                   \
            output[b * params->units + u] = (int8_t)mcu_clamp_i32(y, -128, 127);                              \
        }                                                                                                     \
    }                                                                                                         \
    return MCU_OK;

mcu_status mcu_svdf_s8(const mcu_svdf_params *params, const int8_t *input, int8_t *output)
{
    if (params == NULL || input == NULL || output == NULL || params->state == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    MCU_SVDF_BODY(int8_t, -128, 127)
}

mcu_status mcu_svdf_state_s16_s8(const mcu_svdf_params *params, const int8_t *input, int8_t *output)
{
    if (params == NULL || input == NULL || output == NULL || params->state == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    MCU_SVDF_BODY(int16_t, -32768, 32767)
}
