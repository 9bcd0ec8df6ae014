/*
 * mcu_patch_s8.c - tile copies of patch-based inference (see mcu_patch.h). Rows are copied with memcpy.
 */
/* memcpy/memset: compiler builtins; the call they may become is resolved by the libc or by firmware/common/mcu_string.c */

#include "mcu_patch.h"

void mcu_patch_fill_s8(int8_t *buf, int32_t h, int32_t w, int32_t c, int32_t y0, int32_t x0, int32_t H,
                       int32_t W, int8_t fill)
{
    const int32_t xs = x0 < 0 ? 0 : x0;
    const int32_t xe = x0 + w > W ? W : x0 + w;
    int32_t y;
    for (y = 0; y < h; y++) {
        const int32_t sy = y0 + y;
        int8_t *row = buf + (size_t)y * w * c;
        if (sy < 0 || sy >= H || xs >= xe) {
            __builtin_memset(row, fill, (size_t)w * c);
            continue;
        }
        __builtin_memset(row, fill, (size_t)(xs - x0) * c);
        __builtin_memset(row + (size_t)(xe - x0) * c, fill, (size_t)(x0 + w - xe) * c);
    }
}

void mcu_patch_load_s8(const int8_t *src, int32_t H, int32_t W, int32_t c, int8_t *buf, int32_t h, int32_t w,
                       int32_t y0, int32_t x0, int8_t fill)
{
    const int32_t xs = x0 < 0 ? 0 : x0;
    const int32_t xe = x0 + w > W ? W : x0 + w;
    int32_t y;
    mcu_patch_fill_s8(buf, h, w, c, y0, x0, H, W, fill); /* what lies outside the image */
    for (y = 0; y < h && xs < xe; y++) {
        const int32_t sy = y0 + y;
        if (sy >= 0 && sy < H) {
            __builtin_memcpy(buf + ((size_t)y * w + (xs - x0)) * c, src + ((size_t)sy * W + xs) * c,
                             (size_t)(xe - xs) * c);
        }
    }
}

void mcu_patch_load_nchw_s8(const int8_t *src, int32_t H, int32_t W, int32_t c, int8_t *buf, int32_t h,
                            int32_t w, int32_t y0, int32_t x0, int8_t fill)
{
    const int32_t xs = x0 < 0 ? 0 : x0;
    const int32_t xe = x0 + w > W ? W : x0 + w;
    int32_t y, x, ch;
    mcu_patch_fill_s8(buf, h, w, c, y0, x0, H, W, fill); /* what lies outside the image */
    for (y = 0; y < h; y++) {
        const int32_t sy = y0 + y;
        if (sy < 0 || sy >= H) {
            continue;
        }
        for (ch = 0; ch < c; ch++) {
            const int8_t *in = src + ((size_t)ch * H + sy) * W;
            int8_t *out = buf + (size_t)y * w * c + ch;
            for (x = xs; x < xe; x++) {
                out[(size_t)(x - x0) * c] = in[x];
            }
        }
    }
}

void mcu_patch_store_s8(const int8_t *buf, int32_t h, int32_t w, int32_t c, int8_t *dst, int32_t W,
                        int32_t y0, int32_t x0)
{
    int32_t y;
    for (y = 0; y < h; y++) {
        __builtin_memcpy(dst + ((size_t)(y0 + y) * W + x0) * c, buf + (size_t)y * w * c, (size_t)w * c);
    }
}
