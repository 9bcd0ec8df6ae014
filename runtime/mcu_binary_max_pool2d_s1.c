/*
 * mcu_binary_max_pool2d_s1.c - max pooling on packed bits: the max of {-1, +1} values is -1 only when all
 * are -1, so with bit 1 = -1 it is the AND of the words over the valid (unpadded) window. Portable C.
 */
#include "mcu_binary.h"

mcu_status mcu_binary_max_pool2d_s1(const mcu_binary_pool_params *params, const uint32_t *input,
                                    uint32_t *output)
{
    int32_t b, oy, ox, c, fy, fx;

    if (params == NULL || input == NULL || output == NULL || params->stride_h <= 0 || params->stride_w <= 0) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const mcu_dims in = params->input;
        const mcu_dims out = params->output;
        const int32_t words = mcu_packed_words(in.c);
        const int32_t row = in.w * words;
        for (b = 0; b < out.n; b++) {
            const uint32_t *in_b = input + (size_t)b * in.h * row;
            for (oy = 0; oy < out.h; oy++) {
                const int32_t y0 = oy * params->stride_h - params->pad_top;
                const int32_t fy0 = y0 < 0 ? -y0 : 0;
                const int32_t fy1 = params->filter_h < in.h - y0 ? params->filter_h : in.h - y0;
                for (ox = 0; ox < out.w; ox++) {
                    const int32_t x0 = ox * params->stride_w - params->pad_left;
                    const int32_t fx0 = x0 < 0 ? -x0 : 0;
                    const int32_t fx1 = params->filter_w < in.w - x0 ? params->filter_w : in.w - x0;
                    uint32_t *o = output + (((size_t)b * out.h + oy) * out.w + ox) * words;
                    for (c = 0; c < words; c++) {
                        uint32_t acc = 0xFFFFFFFFu;
                        for (fy = fy0; fy < fy1; fy++) {
                            for (fx = fx0; fx < fx1; fx++) {
                                acc &= in_b[(size_t)(y0 + fy) * row + (size_t)(x0 + fx) * words + c];
                            }
                        }
                        o[c] = acc;
                    }
                }
            }
        }
    }
    return MCU_OK;
}
