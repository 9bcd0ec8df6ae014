/*
 * mcu_transpose_conv.h - the gather form of a transpose convolution, shared by mcu_transpose_conv2d_s8.c and
 * _s16.c. TFLite scatters input pixel i to outputs i * stride - pad + k (k < kernel); output o therefore
 * receives the taps k = (o + pad) - i * stride for every input i with 0 <= k < kernel and 0 <= i < in.
 * Static inline, C99, no floating point.
 */
#ifndef MCU_TRANSPOSE_CONV_H
#define MCU_TRANSPOSE_CONV_H

#include <stdint.h>

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

#endif /* MCU_TRANSPOSE_CONV_H */
