/*
 * mcu_patch.h - helpers of patch-based inference (MCUNetV2; mcutool/schedule/patch.py): copy a tile's input
 * region out of a whole NHWC tensor, fill the part of a tile buffer that lies outside its tensor, and copy a
 * finished output tile back into the whole tensor.
 *
 * A tile buffer holds rows [y0, y0 + h) and columns [x0, x0 + w) of a tensor of H x W pixels of c channels;
 * y0 / x0 may be negative and the region may run past H / W (the layer's padding): those positions hold
 * `fill`, the value TFLite's padding means for the layer reading the buffer (its input zero point, or -128
 * before a max pool). C99, freestanding, no heap, no floating point.
 */
#ifndef MCU_PATCH_H
#define MCU_PATCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* buf (h x w x c) = src (H x W x c) at rows y0.., cols x0..; positions outside src = fill */
void mcu_patch_load_s8(const int8_t *src, int32_t H, int32_t W, int32_t c, int8_t *buf, int32_t h, int32_t w,
                       int32_t y0, int32_t x0, int8_t fill);

/* the same from an NCHW src (c x H x W): buf stays h x w x c, read through strides (a PyTorch export's input) */
void mcu_patch_load_nchw_s8(const int8_t *src, int32_t H, int32_t W, int32_t c, int8_t *buf, int32_t h,
                            int32_t w, int32_t y0, int32_t x0, int8_t fill);

/* positions of buf (h x w x c, origin y0, x0) outside [0, H) x [0, W) = fill; the rest is left as is */
void mcu_patch_fill_s8(int8_t *buf, int32_t h, int32_t w, int32_t c, int32_t y0, int32_t x0, int32_t H,
                       int32_t W, int8_t fill);

/* dst (H x W x c) rows y0.., cols x0.. = buf (h x w x c); the tile lies inside dst */
void mcu_patch_store_s8(const int8_t *buf, int32_t h, int32_t w, int32_t c, int8_t *dst, int32_t W,
                        int32_t y0, int32_t x0);

#ifdef __cplusplus
}
#endif

#endif
