/*
 * mcu_lstm_s8.c - UNIDIRECTIONAL_SEQUENCE_LSTM in TFLite's 8x8->16 scheme (a stateful layer).
 *
 * Follows TFLite Micro's integer LSTM (micro/kernels/lstm_eval.h LstmStep, lstm_eval.cc) step by step:
 *   gate = act(sat16(FC(x) + FC(h)))   FC: int8 -> int16 at 2^-12 (reference_integer_ops::FullyConnected),
 *                                      act: the int16 sigmoid (Q3.12 in, Q0.15 out) or, for the cell gate, tanh
 *   cell = sat16(forget * cell + input * cell_gate), clipped     (reference_integer_ops::MulElementwise)
 *   hidden = tanh(cell) * output -> int8 at the hidden state's scale and zero point; output[t] = hidden.
 * Gates are computed in TFLite Micro's order (forget, input, cell, then the output gate after the cell update).
 * The hidden (int8) and cell (int16) states persist across calls in model.c (an ONNX LSTM, reset_each_call, starts
 * every call from the reset values: hidden = its zero point, cell = 0). The gate vectors live on the stack
 * (MCU_LSTM_MAX_UNITS int16 each); int32 sums wrap as uint32 (defined C, TFLite's results).
 */
#include "mcu_activation_s16.h"
#include "mcu_kernels.h"

#define MCU_LSTM_MAX_UNITS 128

static int32_t clamp16(int32_t v) { return mcu_clamp_i32(v, -32768, 32767); }

static int32_t mul_s16(int32_t a, int32_t b, mcu_quant q, int32_t zero_point, int32_t lo, int32_t hi)
{
    return mcu_clamp_i32(mcu_requantize(a * b, q.multiplier, q.shift) + zero_point, lo, hi);
}

/* One gate over all units: FC(x) with bias + FC(h), saturating add, then the nonlinearity. */
static void gate(const mcu_lstm_params *p, int32_t g, const int8_t *x, const int8_t *h, int32_t sigmoid,
                 int16_t *out)
{
    const int32_t units = p->units;
    for (int32_t u = 0; u < units; u++) {
        const int8_t *wx = p->weights_x + (g * units + u) * p->input_size;
        const int8_t *wh = p->weights_h + (g * units + u) * units;
        uint32_t acc = (uint32_t)p->bias[g * units + u];
        for (int32_t c = 0; c < p->input_size; c++) {
            acc += (uint32_t)((int32_t)wx[c] * ((int32_t)x[c] + p->input_offset));
        }
        const int32_t a = clamp16(mcu_requantize((int32_t)acc, p->input_fc[g].multiplier, p->input_fc[g].shift));
        uint32_t rec = 0;
        for (int32_t k = 0; k < units; k++) {
            rec += (uint32_t)((int32_t)wh[k] * ((int32_t)h[k] - p->hidden_zero_point));
        }
        const int32_t r = clamp16(mcu_requantize((int32_t)rec, p->recurrent_fc[g].multiplier,
                                                 p->recurrent_fc[g].shift));
        const int32_t s = clamp16(a + r);
        out[u] = sigmoid ? mcu_logistic_value_s16(s, 0, 0) : mcu_tanh_value_s16(s, 0, 0);
    }
}

mcu_status mcu_lstm_s8(const mcu_lstm_params *params, const int8_t *input, int8_t *output)
{
    enum { INPUT_GATE = 0, FORGET_GATE = 1, CELL_GATE = 2, OUTPUT_GATE = 3 };
    int16_t forget[MCU_LSTM_MAX_UNITS], in_gate[MCU_LSTM_MAX_UNITS], cell_gate[MCU_LSTM_MAX_UNITS];
    const mcu_lstm_params *p = params;

    if (p == NULL || input == NULL || output == NULL || p->hidden == NULL || p->cell == NULL
        || p->units <= 0 || p->units > MCU_LSTM_MAX_UNITS) {
        return MCU_ERROR_ARGUMENT;
    }
    for (int32_t b = 0; b < p->batch; b++) {
        int8_t *h = p->hidden + b * p->units;
        int16_t *c = p->cell + b * p->units;
        for (int32_t u = 0; p->reset_each_call && u < p->units; u++) {
            h[u] = (int8_t)p->hidden_zero_point;
            c[u] = 0;
        }
        for (int32_t t = 0; t < p->time_steps; t++) {
            const int8_t *x = input + (b * p->time_steps + t) * p->input_size;
            gate(p, FORGET_GATE, x, h, 1, forget);
            gate(p, INPUT_GATE, x, h, 1, in_gate);
            gate(p, CELL_GATE, x, h, p->cell_gate_sigmoid, cell_gate);
            for (int32_t u = 0; u < p->units; u++) {
                int32_t v = mul_s16(forget[u], c[u], p->forget_cell_mul, 0, -32768, 32767);
                v = clamp16(v + mul_s16(in_gate[u], cell_gate[u], p->input_mul, 0, -32768, 32767));
                if (p->cell_clip > 0) {
                    v = mcu_clamp_i32(v, -p->cell_clip, p->cell_clip);
                }
                c[u] = (int16_t)v;
            }
            gate(p, OUTPUT_GATE, x, h, 1, forget); /* the output gate reuses the forget gate's vector */
            int8_t *out = output + (b * p->time_steps + t) * p->units;
            for (int32_t u = 0; u < p->units; u++) {
                const int32_t th = mcu_tanh_value_s16(c[u], p->cell_tanh_multiplier, p->cell_tanh_shift);
                h[u] = (int8_t)mul_s16(th, forget[u], p->hidden_mul, p->hidden_zero_point, -128, 127);
                out[u] = h[u];
            }
        }
    }
    return MCU_OK;
}
