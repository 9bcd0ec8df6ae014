/*
 * mcu_broadcast.h - element offsets of a 4-D (NHWC) input broadcast to an output shape, for the binary
 * elementwise kernels (NumPy broadcasting, what TFLite's Broadcast*4DSlow / NdArrayDescsForElementwiseBroadcast
 * do): an input extent of 1 is repeated over the output's extent, i.e. its stride along that axis is 0.
 * Static inline, C99, freestanding.
 */
#ifndef MCU_BROADCAST_H
#define MCU_BROADCAST_H

#include "mcu_kernels.h"

/* Element strides of an input along N, H, W, C; 0 along an extent of 1. */
typedef struct {
    int32_t n;
    int32_t h;
    int32_t w;
    int32_t c;
} mcu_strides;

static inline mcu_strides mcu_broadcast_strides(mcu_dims in)
{
    mcu_strides s;
    s.c = in.c == 1 ? 0 : 1;
    s.w = in.w == 1 ? 0 : in.c;
    s.h = in.h == 1 ? 0 : in.w * in.c;
    s.n = in.n == 1 ? 0 : in.h * in.w * in.c;
    return s;
}

/* Whether `in` broadcasts to `out` (every extent equal or 1). */
static inline int mcu_broadcasts_to(mcu_dims in, mcu_dims out)
{
    return (in.n == out.n || in.n == 1) && (in.h == out.h || in.h == 1) && (in.w == out.w || in.w == 1)
           && (in.c == out.c || in.c == 1);
}

/* Offset of output position (b, y, x, 0) in an input with strides s. */
static inline int32_t mcu_broadcast_offset(mcu_strides s, int32_t b, int32_t y, int32_t x)
{
    return b * s.n + y * s.h + x * s.w;
}

/* Whether both inputs of a binary kernel's parameters P (fields input1, input2, output) broadcast to its output. */
#define MCU_BROADCAST_OK(P) (mcu_broadcasts_to((P)->input1, (P)->output) && mcu_broadcasts_to((P)->input2, (P)->output))

/*
 * The loop every binary elementwise kernel shares: for each output element (b, y, x, c), in order,
 * *OUT++ = ELEMENT(P, input1 element, input2 element), where ELEMENT is the kernel's static inline element
 * function and T1, T2, TO the element types of input1, input2 and the output (the tensors are passed as bytes;
 * arena offsets are 8-byte aligned). Each input element is read before the output element at the same position
 * is written (in place).
 */
#define MCU_BROADCAST_BINARY_T(T1, T2, TO, P, IN1, IN2, OUT, ELEMENT)                              \
    do {                                                                                          \
        const mcu_dims o_ = (P)->output;                                                          \
        const mcu_strides s1_ = mcu_broadcast_strides((P)->input1);                               \
        const mcu_strides s2_ = mcu_broadcast_strides((P)->input2);                               \
        const T1 *in1_ = (const T1 *)(const void *)(IN1);                                         \
        const T2 *in2_ = (const T2 *)(const void *)(IN2);                                         \
        TO *out_ = (TO *)(void *)(OUT);                                                           \
        int32_t b_, y_, x_, c_;                                                                   \
        for (b_ = 0; b_ < o_.n; b_++) {                                                           \
            for (y_ = 0; y_ < o_.h; y_++) {                                                       \
                for (x_ = 0; x_ < o_.w; x_++) {                                                   \
                    const T1 *p1_ = in1_ + mcu_broadcast_offset(s1_, b_, y_, x_);                 \
                    const T2 *p2_ = in2_ + mcu_broadcast_offset(s2_, b_, y_, x_);                 \
                    for (c_ = 0; c_ < o_.c; c_++) {                                               \
                        *out_++ = ELEMENT((P), p1_[c_ * s1_.c], p2_[c_ * s2_.c]);                 \
                    }                                                                             \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    } while (0)

/* The int8 instance. */
#define MCU_BROADCAST_BINARY(P, IN1, IN2, OUT, ELEMENT) \
    MCU_BROADCAST_BINARY_T(int8_t, int8_t, int8_t, P, IN1, IN2, OUT, ELEMENT)

#endif /* MCU_BROADCAST_H */
