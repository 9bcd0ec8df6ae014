/*
 * mcu_binary_conv2d_s1.c - binary (XNOR/popcount) convolution, NHWC, packed input and weights (mcu_binary.h).
 *
 *   dot[oc] = sum over the valid taps of (in_c - 2 * popcount(x XOR w))
 *
 * Padded taps must not count (that equals a zero-padded float conv on +-1 values). Each output pixel's
 * window is gathered into one contiguous run of kh * kw * words words with padded taps as +1 (bits 0), so
 * every output channel is one popcount over a run against its contiguous weights. A padded tap then added
 * popcount(0 XOR w) = popcount(w) to the count and in_c to the tap total; both are taken back -- only at
 * border pixels.
 *   mcu_binary_conv2d_s1:    bits out, bit = (dot < thresholds[oc]) XOR flip bit oc (BatchNorm + Sign)
 *   mcu_binary_conv2d_s1_s8: int8 out, MultiplyByQuantizedMultiplier(dot + bias[oc], quant[oc]) + offset
 * Portable C for every core.
 */
#include "mcu_binary.h"
#include "mcu_requant.h"

typedef struct {
    uint32_t words[MCU_BINARY_MAX_WINDOW];
    uint8_t padded[MCU_BINARY_MAX_WINDOW]; /* indices of the padded taps */
    int32_t num_padded;
} mcu_binary_window;

/* Gather the window of output pixel (oy, ox); padded taps become zero words and are listed. */
MCU_BINARY_INLINE void gather(const mcu_binary_conv2d_params *p, const uint32_t *in_b, int32_t oy, int32_t ox,
                              int32_t words, mcu_binary_window *win)
{
    const int32_t y0 = oy * p->stride_h - p->pad_top;
    const int32_t x0 = ox * p->stride_w - p->pad_left;
    uint32_t *dst = win->words;
    int32_t ky, kx, i;
    win->num_padded = 0;
    for (ky = 0; ky < p->filter_h; ky++) {
        const int32_t iy = y0 + ky;
        for (kx = 0; kx < p->filter_w; kx++, dst += words) {
            const int32_t ix = x0 + kx;
            if (iy < 0 || iy >= p->input.h || ix < 0 || ix >= p->input.w) {
                for (i = 0; i < words; i++) {
                    dst[i] = 0u;
                }
                win->padded[win->num_padded++] = (uint8_t)(ky * p->filter_w + kx);
            } else {
                const uint32_t *src = in_b + ((size_t)iy * p->input.w + ix) * words;
                for (i = 0; i < words; i++) {
                    dst[i] = src[i];
                }
            }
        }
    }
}

MCU_BINARY_INLINE int32_t window_dot(const mcu_binary_conv2d_params *p, const mcu_binary_window *win,
                                     const uint32_t *w, int32_t words, int32_t n_words, int32_t all_taps)
{
    int32_t count = (int32_t)mcu_popcount_xor(win->words, w, n_words);
    int32_t taps = all_taps;
    if (win->num_padded) {
        int32_t i;
        for (i = 0; i < win->num_padded; i++) {
            const uint32_t *wt = w + (size_t)win->padded[i] * words;
            count -= (int32_t)mcu_popcount_words(wt, words);
        }
        taps -= win->num_padded;
    }
    return taps * p->input.c - 2 * count;
}

static int check(const mcu_binary_conv2d_params *p, const void *input, const void *output)
{
    return p != NULL && input != NULL && output != NULL && p->weights != NULL &&
           p->stride_h > 0 && p->stride_w > 0 &&
           p->filter_h * p->filter_w * mcu_packed_words(p->input.c) <= MCU_BINARY_MAX_WINDOW;
}

MCU_BINARY_OPT mcu_status mcu_binary_conv2d_s1(const mcu_binary_conv2d_params *params, const uint32_t *input,
                                               uint32_t *output)
{
    mcu_binary_window win;
    int32_t b, oy, ox, oc;

    if (!check(params, input, output) || params->thresholds == NULL || params->flip == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const int32_t words = mcu_packed_words(params->input.c);
        const int32_t taps = params->filter_h * params->filter_w;
        const int32_t n_words = taps * words;
        const int32_t out_c = params->output.c;
        const int32_t out_words = mcu_packed_words(out_c);
        for (b = 0; b < params->output.n; b++) {
            const uint32_t *in_b = input + (size_t)b * params->input.h * params->input.w * words;
            for (oy = 0; oy < params->output.h; oy++) {
                for (ox = 0; ox < params->output.w; ox++) {
                    uint32_t *o = output + (((size_t)b * params->output.h + oy) * params->output.w + ox) * out_words;
                    const uint32_t *w = params->weights;
                    uint32_t word = 0u;
                    gather(params, in_b, oy, ox, words, &win);
                    for (oc = 0; oc < out_c; oc++, w += n_words) {
                        const int32_t dot = window_dot(params, &win, w, words, n_words, taps);
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

MCU_BINARY_OPT mcu_status mcu_binary_conv2d_s1_s8(const mcu_binary_conv2d_params *params, const uint32_t *input,
                                                  int8_t *output)
{
    mcu_binary_window win;
    int32_t b, oy, ox, oc;

    if (!check(params, input, output) || params->bias == NULL || params->quant == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const int32_t words = mcu_packed_words(params->input.c);
        const int32_t taps = params->filter_h * params->filter_w;
        const int32_t n_words = taps * words;
        const int32_t out_c = params->output.c;
        for (b = 0; b < params->output.n; b++) {
            const uint32_t *in_b = input + (size_t)b * params->input.h * params->input.w * words;
            for (oy = 0; oy < params->output.h; oy++) {
                for (ox = 0; ox < params->output.w; ox++) {
                    int8_t *o = output + (((size_t)b * params->output.h + oy) * params->output.w + ox) * out_c;
                    const uint32_t *w = params->weights;
                    gather(params, in_b, oy, ox, words, &win);
                    for (oc = 0; oc < out_c; oc++, w += n_words) {
                        const int32_t dot = window_dot(params, &win, w, words, n_words, taps);
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
