/*
 * mcu_binary_conv2d_s1.c - binary (XNOR/popcount) convolution, NHWC, packed input and weights (mcu_binary.h).
 *
 *   dot[oc] = sum over the valid taps of (in_c - 2 * popcount(x XOR w))
 *
 * Padded taps are skipped (their count never enters dot), which equals a zero-padded float conv on +-1
 * values. For each output pixel the valid window is a run of (kx1 - kx0) * words contiguous words per
 * input row, in the input and in each output channel's weights alike; the popcounts of a pixel's rows are
 * accumulated in byte lanes (mcu_popcount_xor_lanes) and summed once.
 *   mcu_binary_conv2d_s1:    bits out, bit = (dot < thresholds[oc]) XOR flip bit oc (BatchNorm + Sign)
 *   mcu_binary_conv2d_s1_s8: int8 out, MultiplyByQuantizedMultiplier(dot + bias[oc], quant[oc]) + offset
 * Portable C for every core.
 */
#include "mcu_binary.h"
#include "mcu_requant.h"

typedef struct {
    const uint32_t *x;  /* first valid input word of the window's first valid row */
    int32_t rows;       /* valid rows */
    int32_t run;        /* contiguous words per valid row */
    int32_t x_row;      /* words between two input rows */
    int32_t w_row;      /* words between two weight rows */
    int32_t w_start;    /* offset of the first valid tap in an output channel's weights */
    int32_t n;          /* valid taps * input channels */
} mcu_binary_window;

static inline mcu_binary_window window_at(const mcu_binary_conv2d_params *p, const uint32_t *in_b, int32_t oy,
                                          int32_t ox, int32_t words)
{
    mcu_binary_window w;
    const int32_t y0 = oy * p->stride_h - p->pad_top;
    const int32_t x0 = ox * p->stride_w - p->pad_left;
    const int32_t ky0 = y0 < 0 ? -y0 : 0;
    const int32_t ky1 = p->filter_h < p->input.h - y0 ? p->filter_h : p->input.h - y0;
    const int32_t kx0 = x0 < 0 ? -x0 : 0;
    const int32_t kx1 = p->filter_w < p->input.w - x0 ? p->filter_w : p->input.w - x0;
    w.rows = ky1 > ky0 ? ky1 - ky0 : 0;
    w.run = kx1 > kx0 ? (kx1 - kx0) * words : 0;
    w.x_row = p->input.w * words;
    w.w_row = p->filter_w * words;
    w.x = in_b + (size_t)(y0 + ky0) * w.x_row + (size_t)(x0 + kx0) * words;
    w.w_start = ky0 * w.w_row + kx0 * words;
    w.n = w.rows * (w.run / words) * p->input.c;
    return w;
}

/* popcount of (x XOR w) over the window for one output channel's weights. */
static inline int32_t window_popcount(const mcu_binary_window *win, const uint32_t *weights)
{
    const uint32_t *x = win->x;
    const uint32_t *w = weights + win->w_start;
    uint32_t lanes = 0u;
    int32_t total = 0, pending = 0, r;
    for (r = 0; r < win->rows; r++) {
        int32_t done = 0;
        while (done < win->run) {
            int32_t n = win->run - done;
            n = n < 30 - pending ? n : 30 - pending;
            mcu_popcount_xor_lanes(x + done, w + done, n, &lanes);
            pending += n;
            done += n;
            if (pending == 30) {
                total += (int32_t)mcu_sum_bytes(lanes);
                lanes = 0u;
                pending = 0;
            }
        }
        x += win->x_row;
        w += win->w_row;
    }
    return total + (int32_t)mcu_sum_bytes(lanes);
}

static int check(const mcu_binary_conv2d_params *p, const void *input, const void *output)
{
    return p != NULL && input != NULL && output != NULL && p->weights != NULL && p->stride_h > 0 &&
           p->stride_w > 0;
}

MCU_KERNEL_OPT mcu_status mcu_binary_conv2d_s1(const mcu_binary_conv2d_params *params, const uint32_t *input,
                                               uint32_t *output)
{
    int32_t b, oy, ox, oc;

    if (!check(params, input, output) || params->thresholds == NULL || params->flip == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const int32_t words = mcu_packed_words(params->input.c);
        const int32_t out_c = params->output.c;
        const int32_t out_words = mcu_packed_words(out_c);
        const int32_t w_per_oc = params->filter_h * params->filter_w * words;
        for (b = 0; b < params->output.n; b++) {
            const uint32_t *in_b = input + (size_t)b * params->input.h * params->input.w * words;
            for (oy = 0; oy < params->output.h; oy++) {
                for (ox = 0; ox < params->output.w; ox++) {
                    const mcu_binary_window win = window_at(params, in_b, oy, ox, words);
                    uint32_t *o = output + (((size_t)b * params->output.h + oy) * params->output.w + ox) * out_words;
                    const uint32_t *w = params->weights;
                    uint32_t word = 0u;
                    for (oc = 0; oc < out_c; oc++, w += w_per_oc) {
                        const int32_t dot = win.n - 2 * window_popcount(&win, w);
                        word |= (uint32_t)(dot < params->thresholds[oc]) << (oc & 31);
                        if ((oc & 31) == 31 || oc == out_c - 1) {
                            o[oc >> 5] = word ^ params->flip[oc >> 5];
                            word = 0u;
                        }
                    }
                }
            }
        }
    }
    return MCU_OK;
}

MCU_KERNEL_OPT mcu_status mcu_binary_conv2d_s1_s8(const mcu_binary_conv2d_params *params, const uint32_t *input,
                                                  int8_t *output)
{
    int32_t b, oy, ox, oc;

    if (!check(params, input, output) || params->bias == NULL || params->quant == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const int32_t words = mcu_packed_words(params->input.c);
        const int32_t out_c = params->output.c;
        const int32_t w_per_oc = params->filter_h * params->filter_w * words;
        for (b = 0; b < params->output.n; b++) {
            const uint32_t *in_b = input + (size_t)b * params->input.h * params->input.w * words;
            for (oy = 0; oy < params->output.h; oy++) {
                for (ox = 0; ox < params->output.w; ox++) {
                    const mcu_binary_window win = window_at(params, in_b, oy, ox, words);
                    int8_t *o = output + (((size_t)b * params->output.h + oy) * params->output.w + ox) * out_c;
                    const uint32_t *w = params->weights;
                    for (oc = 0; oc < out_c; oc++, w += w_per_oc) {
                        const int32_t dot = win.n - 2 * window_popcount(&win, w);
                        const int32_t acc = mcu_requantize(dot + params->bias[oc], params->quant[oc].multiplier,
                                                           params->quant[oc].shift) + params->output_offset;
                        o[oc] = (int8_t)mcu_clamp_i32(acc, params->act.min, params->act.max);
                    }
                }
            }
        }
    }
    return MCU_OK;
}
