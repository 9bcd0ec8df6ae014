/*
 * mcu_binary_conv2d_bitslice_s1.c - binary conv with output channels in bit lanes (mcu_binary.h).
 *
 * The XNOR/popcount kernels (mcu_binary_conv2d_s1.c) count the bits of one output channel at a time. Here
 * the 32 output channels of a word are counted at once, one per bit lane. Input bits are taken 4 at a time:
 * for each group of 4 input channels, a compile-time table (mcutool/codegen/binary_kernels.py) holds, for each of
 * the 16 values of those 4 input bits, the bit-sliced count (0..4, planes of weight 1, 2, 4) of each output
 * channel's weights that differ from them (what XOR/popcount counts). One lookup replaces 4 mask-and-XOR steps
 * and the adders that would count them to 3 planes; a carry-save adder tree (Harley-Seal) accumulates the
 * groups' planes into a bit-sliced count: planes ones .. sixteens in registers, half adders above them in
 * memory, 12 planes (counts < 4096). The tables take 12 times the packed weights' flash.
 *
 * Padded taps are gathered as x = +1 (bits 0); what they add to dot is folded at compile time into per
 * border pattern constants (pattern = row_class[oy] * col_classes + col_class[ox]; mcutool/codegen/
 * binary_kernels.py derives them from the op's thresholds or bias):
 *   mcu_binary_conv2d_bitslice_s1:    bit = (count >= k[pattern][ocw]) XOR flip, compared bit-sliced,
 *                                     32 channels per word operation;
 *   mcu_binary_conv2d_bitslice_s1_s8: acc = bias_p[pattern][oc] - 2 * count, requantized per channel (each
 *                                     lane's count is read back from the planes).
 * Requires in_c % 32 == 0, out_c % 32 == 0 and kh * kw * in_c < 4095; mcutool uses the other kernels otherwise.
 */
#include "mcu_binary.h"
#include "mcu_requant.h"

#define CSA(h, l, a, b, c)            \
    do {                              \
        const uint32_t u_ = (a) ^ (b); \
        h = ((a) & (b)) | (u_ & (c)); \
        l = u_ ^ (c);                 \
    } while (0)

/* Half adder of a carry vector into a plane. */
#define RIPPLE(plane, carry)                  \
    do {                                      \
        const uint32_t n_ = (plane) & (carry); \
        (plane) ^= (carry);                   \
        (carry) = n_;                         \
    } while (0)

/* The entries of group g's table (planes of weight 1, 2, 4 of its mismatch count, 16 words apart) for the
 * value of input bits 4g..4g+3 of x. */
#define ENTRY(x, g, t) (entry((t), ((x) >> (4 * (g))) & 15u) + (g) * 48)

/* t + v, with v opaque to GCC: otherwise it folds the group's offset into v and spends an addition per plane
 * instead of using load offsets. */
MCU_BINARY_INLINE const uint32_t *entry(const uint32_t *t, uint32_t v)
{
#if defined(__GNUC__)
    __asm__("" : "+r"(v));
#endif
    return t + v;
}

/* Adds the mismatch counts of input bits 4g..4g+15 of x (groups g..g+3) to the planes ones, twos, fours,
 * eights; g1 and g2 receive the two carries out of eights (weight 16). Ordered so that few partial sums are
 * live at once (the adder tree's registers). */
#define ADD16(x, g, t, g1, g2)                                                                      \
    do {                                                                                        \
        const uint32_t *a_ = ENTRY(x, (g) + 0, t), *b_ = ENTRY(x, (g) + 1, t);                    \
        uint32_t c1_, c2_, d1_, d2_, d3_, e1_, e2_, e3_, e4_;                                     \
        CSA(c1_, ones, ones, a_[0], b_[0]);                                                     \
        CSA(d1_, twos, twos, a_[16], b_[16]);                                                   \
        CSA(e1_, fours, fours, a_[32], b_[32]);                                                 \
        a_ = ENTRY(x, (g) + 2, t);                                                              \
        b_ = ENTRY(x, (g) + 3, t);                                                              \
        CSA(c2_, ones, ones, a_[0], b_[0]);                                                     \
        CSA(d2_, twos, twos, c1_, c2_);                                                         \
        CSA(d3_, twos, twos, a_[16], b_[16]);                                                   \
        CSA(e2_, fours, fours, d1_, d2_);                                                       \
        CSA(g1, eights, eights, e1_, e2_);                                                      \
        CSA(e3_, fours, fours, a_[32], b_[32]);                                                 \
        e4_ = fours & d3_;                                                                      \
        fours ^= d3_;                                                                           \
        CSA(g2, eights, eights, e3_, e4_);                                                      \
    } while (0)

/* A pixel's window: rows of row_words contiguous input words, `stride` words apart (the input itself for an
 * interior pixel, a gathered copy for a border one). */
typedef struct {
    const uint32_t *base;
    int32_t stride;
    int32_t rows;
    int32_t row_words;
} window_rows;

/* The bit-sliced mismatch count of one output-channel word over a window (32 inputs per word): planes[i] =
 * bit i of every lane's count, i < n_planes (9, 10 or 12, enough for the window's largest count; the planes above
 * are 0). `t` is the output-channel word's tables (MCU_BINARY_BITSLICE_TABLE words per window word). */
MCU_BINARY_INLINE void count_planes_n(const window_rows *win, const uint32_t *t, uint32_t *planes,
                                      const int32_t n_planes)
{
    uint32_t ones = 0u, twos = 0u, fours = 0u, eights = 0u, sixteens = 0u;
    uint32_t high[MCU_BINARY_BITSLICE_PLANES - 5] = {0u}; /* planes 5..: half adders once per input word */
    const uint32_t *row = win->base;
    int32_t r, i;
    for (r = 0; r < win->rows; r++, row += win->stride) {
        const uint32_t *const end = row + win->row_words;
        const uint32_t *window;
        for (window = row; window < end; window++, t += MCU_BINARY_BITSLICE_TABLE) {
            const uint32_t x = *window;
            uint32_t g1a, g2a, g1b, g2b, h1, h2, carry;
            ADD16(x, 0, t, g1a, g2a);
            ADD16(x, 4, t, g1b, g2b);
            CSA(h1, sixteens, sixteens, g1a, g2a);
            CSA(h2, sixteens, sixteens, g1b, g2b);
            CSA(carry, high[0], high[0], h1, h2);
            for (i = 1; i < n_planes - 6; i++) {
                RIPPLE(high[i], carry);
            }
            high[n_planes - 6] ^= carry;
        }
    }
    planes[0] = ones;
    planes[1] = twos;
    planes[2] = fours;
    planes[3] = eights;
    planes[4] = sixteens;
    for (i = 5; i < MCU_BINARY_BITSLICE_PLANES; i++) {
        planes[i] = high[i - 5];
    }
}

/* Kept out of line so that only their own state competes for registers. */
static MCU_BINARY_OPT __attribute__((noinline)) void count_planes_9(const window_rows *win, const uint32_t *t,
                                                                      uint32_t *planes)
{
    count_planes_n(win, t, planes, 9);
}

static MCU_BINARY_OPT __attribute__((noinline)) void count_planes_10(const window_rows *win, const uint32_t *t,
                                                                       uint32_t *planes)
{
    count_planes_n(win, t, planes, 10);
}

static MCU_BINARY_OPT __attribute__((noinline)) void count_planes_12(const window_rows *win, const uint32_t *t,
                                                                       uint32_t *planes)
{
    count_planes_n(win, t, planes, MCU_BINARY_BITSLICE_PLANES);
}

/* Windows of fewer than 512 or 1024 inputs (counts fit 9 or 10 planes) carry through fewer planes per input
 * word. */
MCU_BINARY_INLINE void count_planes(const mcu_binary_conv2d_bitslice_params *p, const window_rows *win,
                                    const uint32_t *t, uint32_t *planes)
{
    const int32_t inputs = p->filter_h * p->filter_w * p->input.c;
    if (inputs < 512) {
        count_planes_9(win, t, planes);
    } else if (inputs < 1024) {
        count_planes_10(win, t, planes);
    } else {
        count_planes_12(win, t, planes);
    }
}

/* The window of the output pixel whose input origin is (y0, x0): the input rows themselves when every tap is
 * inside, else a copy in `buf` with padded taps as zero words (+1). */
MCU_BINARY_INLINE void window_of(const mcu_binary_conv2d_bitslice_params *p, const uint32_t *in_b, int32_t y0,
                                 int32_t x0, int32_t words, uint32_t *buf, window_rows *win)
{
    int32_t ky, kx, i;
    win->rows = p->filter_h;
    win->row_words = p->filter_w * words;
    if (y0 >= 0 && x0 >= 0 && y0 + p->filter_h <= p->input.h && x0 + p->filter_w <= p->input.w) {
        win->base = in_b + ((size_t)y0 * p->input.w + x0) * words;
        win->stride = p->input.w * words;
        return;
    }
    win->base = buf;
    win->stride = win->row_words;
    for (ky = 0; ky < p->filter_h; ky++) {
        const int32_t iy = y0 + ky;
        for (kx = 0; kx < p->filter_w; kx++) {
            const int32_t ix = x0 + kx;
            if (iy >= 0 && iy < p->input.h && ix >= 0 && ix < p->input.w) {
                const uint32_t *src = in_b + ((size_t)iy * p->input.w + ix) * words;
                for (i = 0; i < words; i++) {
                    *buf++ = src[i];
                }
            } else {
                for (i = 0; i < words; i++) {
                    *buf++ = 0u;
                }
            }
        }
    }
}

static int bad_params(const mcu_binary_conv2d_bitslice_params *p, const void *input, const void *output)
{
    return p == NULL || input == NULL || output == NULL || p->tables == NULL || p->row_class == NULL ||
           p->col_class == NULL || p->input.c % 32 != 0 || p->output.c % 32 != 0 || p->stride_h <= 0 ||
           p->stride_w <= 0 || p->filter_h * p->filter_w * (p->input.c / 32) > MCU_BINARY_MAX_WINDOW;
}

MCU_BINARY_OPT mcu_status mcu_binary_conv2d_bitslice_s1(const mcu_binary_conv2d_bitslice_params *params,
                                                          const uint32_t *input, uint32_t *output)
{
    uint32_t window[MCU_BINARY_MAX_WINDOW];
    window_rows win;
    uint32_t count[MCU_BINARY_BITSLICE_PLANES];
    int32_t b, oy, ox, ocw, i;

    if (bad_params(params, input, output) || params->k == NULL || params->flip == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const mcu_binary_conv2d_bitslice_params *p = params;
        const int32_t words = p->input.c / 32;
        const int32_t n_words = p->filter_h * p->filter_w * words;
        const int32_t out_words = p->output.c / 32;
        for (b = 0; b < p->output.n; b++) {
            const uint32_t *in_b = input + (size_t)b * p->input.h * p->input.w * words;
            for (oy = 0; oy < p->output.h; oy++) {
                const int32_t y0 = oy * p->stride_h - p->pad_top;
                for (ox = 0; ox < p->output.w; ox++) {
                    const int32_t x0 = ox * p->stride_w - p->pad_left;
                    const int32_t pattern = p->row_class[oy] * p->col_classes + p->col_class[ox];
                    uint32_t *o = output + (((size_t)b * p->output.h + oy) * p->output.w + ox) * out_words;
                    window_of(p, in_b, y0, x0, words, window, &win);
                    for (ocw = 0; ocw < out_words; ocw++) {
                        const uint32_t *k = p->k + ((size_t)pattern * out_words + ocw) * MCU_BINARY_BITSLICE_PLANES;
                        uint32_t borrow = 0u;
                        const uint32_t *t = p->tables + (size_t)ocw * n_words * MCU_BINARY_BITSLICE_TABLE;
                        count_planes(p, &win, t, count);
                        /* lanes where count < k borrow out of count - k */
                        for (i = 0; i < MCU_BINARY_BITSLICE_PLANES; i++) {
                            borrow = (~count[i] & k[i]) | (~(count[i] ^ k[i]) & borrow);
                        }
                        o[ocw] = ~borrow ^ p->flip[ocw];
                    }
                }
            }
        }
    }
    return MCU_OK;
}

/* int8 output: dot = N_all - 2 * count - corr[pattern][oc]; bias_p[pattern][oc] = bias[oc] + N_all -
 * corr[pattern][oc] (compile time), so acc = bias_p - 2 * count, requantized per channel. Each lane's count is
 * read back from the planes. */
MCU_BINARY_OPT mcu_status mcu_binary_conv2d_bitslice_s1_s8(const mcu_binary_conv2d_bitslice_params *params,
                                                             const uint32_t *input, int8_t *output)
{
    uint32_t window[MCU_BINARY_MAX_WINDOW];
    window_rows win;
    uint32_t count[MCU_BINARY_BITSLICE_PLANES];
    int32_t b, oy, ox, ocw, i, j;

    if (bad_params(params, input, output) || params->bias_p == NULL || params->quant == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const mcu_binary_conv2d_bitslice_params *p = params;
        const int32_t words = p->input.c / 32;
        const int32_t n_words = p->filter_h * p->filter_w * words;
        const int32_t out_c = p->output.c;
        for (b = 0; b < p->output.n; b++) {
            const uint32_t *in_b = input + (size_t)b * p->input.h * p->input.w * words;
            for (oy = 0; oy < p->output.h; oy++) {
                const int32_t y0 = oy * p->stride_h - p->pad_top;
                for (ox = 0; ox < p->output.w; ox++) {
                    const int32_t x0 = ox * p->stride_w - p->pad_left;
                    const int32_t pattern = p->row_class[oy] * p->col_classes + p->col_class[ox];
                    const int32_t *bias = p->bias_p + (size_t)pattern * out_c;
                    int8_t *o = output + (((size_t)b * p->output.h + oy) * p->output.w + ox) * out_c;
                    window_of(p, in_b, y0, x0, words, window, &win);
                    for (ocw = 0; ocw < out_c / 32; ocw++) {
                        const uint32_t *t = p->tables + (size_t)ocw * n_words * MCU_BINARY_BITSLICE_TABLE;
                        count_planes(p, &win, t, count);
                        for (j = 0; j < 32; j++) {
                            const int32_t oc = ocw * 32 + j;
                            int32_t n = 0;
                            for (i = MCU_BINARY_BITSLICE_PLANES - 1; i >= 0; i--) {
                                n = (n << 1) | (int32_t)((count[i] >> j) & 1u);
                            }
                            n = mcu_requantize(bias[oc] - 2 * n, p->quant[oc].multiplier, p->quant[oc].shift) +
                                p->output_offset;
                            o[oc] = (int8_t)mcu_clamp_i32(n, p->act.min, p->act.max);
                        }
                    }
                }
            }
        }
    }
    return MCU_OK;
}
