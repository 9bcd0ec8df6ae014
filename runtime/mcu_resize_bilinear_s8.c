/*
 * mcu_resize_bilinear_s8.c - int8 bilinear resize of an NHWC tensor over H and W, integer only.
 *
 * Follows TFLite Micro's int8 RESIZE_BILINEAR (reference_ops::ResizeBilinearInteger): each output row y has
 * source rows y0[y], y1[y] and a 10-bit fraction fy[y] (the same per column: x0, x1, fx), computed at compile
 * time by mcutool (they depend on sizes only). The four neighbours are weighted in 20 bits and the sum is
 * rounded half away from zero (TFLite's default rounding, not TFLITE_SINGLE_ROUNDING). Input and output share
 * scale and zero point. Portable C for every core.
 */
#include "mcu_kernels.h"

mcu_status mcu_resize_bilinear_s8(const mcu_resize_bilinear_params *params, const int8_t *input, int8_t *output)
{
    int32_t b, y, x, c;

    if (params == NULL || input == NULL || output == NULL || params->y0 == NULL || params->y1 == NULL
        || params->fy == NULL || params->x0 == NULL || params->x1 == NULL || params->fx == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const mcu_dims *in = &params->input, *out = &params->output;
        const size_t row = (size_t)in->w * in->c;
        for (b = 0; b < out->n; b++) {
            const int8_t *image = input + (size_t)b * in->h * row;
            for (y = 0; y < out->h; y++) {
                const int8_t *r0 = image + (size_t)params->y0[y] * row;
                const int8_t *r1 = image + (size_t)params->y1[y] * row;
                const int64_t wy1 = params->fy[y], wy0 = 1024 - wy1;
                for (x = 0; x < out->w; x++) {
                    const size_t c0 = (size_t)params->x0[x] * in->c, c1 = (size_t)params->x1[x] * in->c;
                    const int64_t wx1 = params->fx[x], wx0 = 1024 - wx1;
                    for (c = 0; c < in->c; c++) {
                        const int64_t acc = r0[c0 + c] * wy0 * wx0 + r1[c0 + c] * wy1 * wx0
                                            + r0[c1 + c] * wy0 * wx1 + r1[c1 + c] * wy1 * wx1;
                        const int64_t half = acc > 0 ? (1 << 19) : -(1 << 19);
                        *output++ = (int8_t)((acc + half) / (1 << 20));
                    }
                }
            }
        }
    }
    return MCU_OK;
}
