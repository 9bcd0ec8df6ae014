/*
 * mcu_conv.h - what the hand-written conv kernels (mcu_conv2d_s16.c, mcu_transpose_conv2d_s8.c / _s16.c)
 * share: output channels in blocks (a block is the same conv with fewer filters, so its accumulators fit on the
 * stack), and the gather form of a transpose convolution. TFLite scatters input pixel i to outputs
 * i * stride - pad + k (k < kernel); output o therefore receives the taps k = (o + pad) - i * stride for every
 * input i with 0 <= k < kernel and 0 <= i < in.
 * Static inline, C99, no floating point.
 */
#ifndef MCU_CONV_H
#define MCU_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "mcu_kernels.h"

/* The parameters every kernel needs, consistent: weights, per-channel requantization, matching channel counts;
 * non-negative pads for a transpose conv. */
static inline int mcu_conv_params_ok(const mcu_conv_params *p, const void *input, const void *output)
{
    return p != NULL && input != NULL && output != NULL && p->weights != NULL && p->multiplier != NULL
           && p->shift != NULL && p->filter.c == p->input.c && p->filter.n == p->output.c && p->pad_top >= 0
           && p->pad_left >= 0;
}

/* Output channels per block: the kernels keep one int64 accumulator per channel of a block on the stack. */
#define MCU_CONV_CHANNEL_BLOCK 32

/* `p` restricted to output channels [c0, c0 + MCU_CONV_CHANNEL_BLOCK) (fewer at the end); returns their number. */
static inline int32_t mcu_conv_channel_block(const mcu_conv_params *p, int32_t c0, mcu_conv_params *block)
{
    const int32_t n = p->output.c - c0 < MCU_CONV_CHANNEL_BLOCK ? p->output.c - c0 : MCU_CONV_CHANNEL_BLOCK;
    const size_t filter_size = (size_t)p->filter.h * p->filter.w * p->filter.c;
    *block = *p;
    block->output.c = n;
    block->filter.n = n;
    block->weights = p->weights + (size_t)c0 * filter_size;
    block->bias32 = p->bias32 != NULL ? p->bias32 + c0 : NULL;
    block->bias64 = p->bias64 != NULL ? p->bias64 + c0 : NULL;
    block->multiplier = p->multiplier + c0;
    block->shift = p->shift + c0;
    return n;
}

/* The taps reaching output position o along one axis: tap j (0 <= j < *count) is kernel index
 * *k_first + j * stride reading input index *i_first - j. */
static inline void mcu_transpose_taps(int32_t o, int32_t pad, int32_t stride, int32_t kernel, int32_t in,
                                      int32_t *k_first, int32_t *i_first, int32_t *count)
{
    const int32_t t = o + pad; /* >= 0: pad >= 0 */
    int32_t k = t % stride, i = t / stride, n = 0;
    /* skip taps whose input index is past the input's end */
    if (i >= in) {
        k += (i - in + 1) * stride;
        i = in - 1;
    }
    if (k < kernel && i >= 0) {
        const int32_t by_kernel = (kernel - 1 - k) / stride + 1, by_input = i + 1;
        n = by_kernel < by_input ? by_kernel : by_input;
    }
    *k_first = k;
    *i_first = i;
    *count = n;
}

#endif /* MCU_CONV_H */
