/*
 * mcu_conv2d_im2col_s8.h - int8 conv2d over few input channels whose kernel rows are not a whole number of
 * words (a first layer over 3 colour channels: 3x3x3 = 27 taps), bit-exact with TFLite's reference kernel.
 * Called by the shape-specialised wrappers of mcutool/codegen/fast_kernels.py (shape arguments are literals).
 *
 * Per output pixel the kh * kw * c taps are gathered into `col` (kp bytes, kp = the tap count rounded up to a
 * multiple of 4; taps in the padding and the tail hold the input zero point, so they add (zp - zp) * w = 0):
 * a kernel row inside the image is one copy of kw * c contiguous bytes. Then 4 output channels at a time are
 * one micro-kernel call over `col` (weights pre-widened to int16 in SXTB16 lane order, rows of kp, zero
 * past the taps, doubled for mcu_requant_x2_s8), two pixels at a time (mcu_dot4x2_s8_w16): SXTAB16 + SMLAD,
 * each widened input word serving 4 channels and each weight word 2 pixels.
 * Accumulators start at the (doubled) bias; requantization once per output, one SMMLAR.
 */
#ifndef MCU_CONV2D_IM2COL_S8_H
#define MCU_CONV2D_IM2COL_S8_H

#include <stdint.h>

#include "mcu_dot_s8.h"
#include "mcu_requant.h"

/* the kh kernel rows of output pixel (oy, ox) into col[0 : kh * kw * c] */
MCU_DOT_INLINE void mcu_im2col_s8(const int8_t* in, int8_t* col, int32_t h, int32_t w, int32_t c, int32_t kh,
                                  int32_t kw, int32_t iy0, int32_t ix0, int8_t zp)
{
    const int32_t row = kw * c;
    for (int32_t ky = 0; ky < kh; ky++, col += row) {
        const int32_t iy = iy0 + ky;
        if (iy < 0 || iy >= h) {
            __builtin_memset(col, zp, (uint32_t)row);
        } else if (ix0 >= 0 && ix0 + kw <= w) {
            __builtin_memcpy(col, in + (iy * w + ix0) * c, (uint32_t)row);
        } else {
            for (int32_t kx = 0; kx < kw; kx++) {
                const int32_t ix = ix0 + kx;
                if (ix < 0 || ix >= w)
                    __builtin_memset(col + kx * c, zp, (uint32_t)c);
                else
                    __builtin_memcpy(col + kx * c, in + (iy * w + ix) * c, (uint32_t)c);
            }
        }
    }
}

#if MCU_DOT_SIMD32
/* two pixels (col, col + kp) x two output channels (weight rows w, w + kp): the 4 accumulators stay in
 * registers from the bias to the requantization (4 channels per pass kept them in memory between passes) */
MCU_DOT_INLINE void mcu_im2col_dot2x2(const int8_t* col, const int16_t* w, int32_t kp, int32_t x_offset,
                                      int32_t* acc)
{
    const int16x2_t off = mcu_dup16(x_offset);
    int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3];
    MCU_DOT_UNROLL
    for (int32_t i = 0; i + 4 <= kp; i += 4) {
        const int8x4_t u = mcu_ld_s8x4(col + i), v = mcu_ld_s8x4(col + kp + i);
        MCU_DOT_X2_STEP(MCU_DOT_X2_LO, mcu_ld_s16x2(w + i), mcu_ld_s16x2(w + kp + i))
        MCU_DOT_X2_STEP(MCU_DOT_X2_HI, mcu_ld_s16x2(w + i + 2), mcu_ld_s16x2(w + kp + i + 2))
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = b0;
    acc[3] = b1;
}
#endif

/*
 * in (1, h, w, c) -> out (1, oh, ow, n_out); wts: n_out rows of kp int16 (lane order, doubled); bias2, mult,
 * cst, e per output channel and sign_fix (mcu_requant_x2_s8); col: 2 * kp bytes of scratch (two pixels).
 */
MCU_DOT_INLINE void mcu_conv2d_im2col_s8(const int8_t* in, int8_t* out, int32_t h, int32_t w, int32_t c,
                                         int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t pt, int32_t pl,
                                         int32_t oh, int32_t ow, int32_t n_out, int32_t kp, int32_t x_offset,
                                         const int16_t* wts, const int32_t* bias2, const int32_t* mult,
                                         const int32_t* cst, const int32_t* e, int32_t sign_fix, int32_t act_min,
                                         int32_t act_max, int8_t* col)
{
    const int8_t zp = (int8_t)(-x_offset);
    for (int32_t i = kh * kw * c; i < kp; i++)
        col[i] = col[kp + i] = zp;
    for (int32_t oy = 0; oy < oh; oy++) {
        int32_t ox = 0;
        for (; ox + 2 <= ow; ox += 2, out += 2 * n_out) { /* two pixels: each weight word serves both */
            mcu_im2col_s8(in, col, h, w, c, kh, kw, oy * sh - pt, ox * sw - pl, zp);
            mcu_im2col_s8(in, col + kp, h, w, c, kh, kw, oy * sh - pt, (ox + 1) * sw - pl, zp);
            int32_t o = 0;
#if MCU_DOT_SIMD32
            for (; o + 2 <= n_out; o += 2) { /* pixels a, b x channels o, o + 1 */
                int32_t acc[4] = {bias2[o], bias2[o + 1], bias2[o], bias2[o + 1]};
                mcu_im2col_dot2x2(col, wts + o * kp, kp, x_offset, acc);
                const int32_t m0 = mult[o], c0 = cst[o], e0 = e[o], m1 = mult[o + 1], c1 = cst[o + 1], e1 = e[o + 1];
                const int32_t ya0 = mcu_requant_x2_s8(acc[0], m0, c0, e0, sign_fix, act_min, act_max);
                const int32_t ya1 = mcu_requant_x2_s8(acc[1], m1, c1, e1, sign_fix, act_min, act_max);
                const int32_t yb0 = mcu_requant_x2_s8(acc[2], m0, c0, e0, sign_fix, act_min, act_max);
                const int32_t yb1 = mcu_requant_x2_s8(acc[3], m1, c1, e1, sign_fix, act_min, act_max);
                out[o] = (int8_t)ya0;
                out[o + 1] = (int8_t)ya1;
                out[n_out + o] = (int8_t)yb0;
                out[n_out + o + 1] = (int8_t)yb1;
            }
#endif
            for (; o + 4 <= n_out; o += 4) {
                int32_t a[4] = {bias2[o], bias2[o + 1], bias2[o + 2], bias2[o + 3]};
                int32_t b[4] = {bias2[o], bias2[o + 1], bias2[o + 2], bias2[o + 3]};
                mcu_dot4x2_s8_w16(col, wts + o * kp, kp, kp, x_offset, a, b);
                for (int32_t j = 0; j < 4; j++) { /* the constants read once (the int8 stores may alias them) */
                    const int32_t mj = mult[o + j], cj = cst[o + j], ej = e[o + j];
                    const int32_t ya = mcu_requant_x2_s8(a[j], mj, cj, ej, sign_fix, act_min, act_max);
                    const int32_t yb = mcu_requant_x2_s8(b[j], mj, cj, ej, sign_fix, act_min, act_max);
                    out[o + j] = (int8_t)ya;
                    out[n_out + o + j] = (int8_t)yb;
                }
            }
            for (int32_t left = n_out - o; left > 0; left--, o++) {
                const int32_t a = mcu_dot_s8_w16(col, wts + o * kp, kp, x_offset, bias2[o]);
                const int32_t b = mcu_dot_s8_w16(col + kp, wts + o * kp, kp, x_offset, bias2[o]);
                out[o] = (int8_t)mcu_requant_x2_s8(a, mult[o], cst[o], e[o], sign_fix, act_min, act_max);
                out[n_out + o] = (int8_t)mcu_requant_x2_s8(b, mult[o], cst[o], e[o], sign_fix, act_min, act_max);
            }
        }
        if (ox < ow) { /* an odd width: the last pixel alone */
            mcu_im2col_s8(in, col, h, w, c, kh, kw, oy * sh - pt, ox * sw - pl, zp);
            int32_t o = 0;
            for (; o + 4 <= n_out; o += 4) {
                int32_t acc[4] = {bias2[o], bias2[o + 1], bias2[o + 2], bias2[o + 3]};
                mcu_dot4_s8_w16(col, wts + o * kp, kp, kp, x_offset, acc);
                for (int32_t j = 0; j < 4; j++)
                    out[o + j] = (int8_t)mcu_requant_x2_s8(acc[j], mult[o + j], cst[o + j], e[o + j], sign_fix,
                                                           act_min, act_max);
            }
            for (int32_t left = n_out - o; left > 0; left--, o++) { /* counted down: GCC -O3 could not bound
                                                                       o < n_out after the loop above */
                const int32_t acc = mcu_dot_s8_w16(col, wts + o * kp, kp, x_offset, bias2[o]);
                out[o] = (int8_t)mcu_requant_x2_s8(acc, mult[o], cst[o], e[o], sign_fix, act_min, act_max);
            }
            out += n_out;
        }
    }
}

#endif /* MCU_CONV2D_IM2COL_S8_H */
