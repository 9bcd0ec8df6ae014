/* The C library functions compilers call on their own (struct copies, zero-initialised arrays):
 * the firmware is freestanding, and the generated model code needs nothing else from a libc.
 * "no-tree-loop-distribute-patterns" keeps gcc from turning these loops back into calls to themselves. */
#include <stddef.h>
#include <stdint.h>

#include "mcu_string.h"

#define MCU_LIBC_FN __attribute__((used, optimize("no-tree-loop-distribute-patterns")))

typedef uint32_t __attribute__((may_alias)) word_t; /* word access to bytes of any type */

MCU_LIBC_FN void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if ((((uintptr_t)d | (uintptr_t)s) & 3u) == 0) {
        for (; n >= 4; n -= 4, d += 4, s += 4) {
            *(word_t *)(void *)d = *(const word_t *)(const void *)s;
        }
    }
    while (n-- > 0) {
        *d++ = *s++;
    }
    return dst;
}

MCU_LIBC_FN void *memmove(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (d == s || n == 0) {
        return dst;
    }
    if (d < s || d >= s + n) {
        while (n-- > 0) {
            *d++ = *s++;
        }
    } else {
        while (n-- > 0) {
            d[n] = s[n];
        }
    }
    return dst;
}

MCU_LIBC_FN void *memset(void *dst, int value, size_t n)
{
    uint8_t *d = dst;
    uint8_t byte = (uint8_t)value;
    if (((uintptr_t)d & 3u) == 0) {
        uint32_t word = byte * 0x01010101u;
        for (; n >= 4; n -= 4, d += 4) {
            *(word_t *)(void *)d = word;
        }
    }
    while (n-- > 0) {
        *d++ = byte;
    }
    return dst;
}

MCU_LIBC_FN int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a;
    const uint8_t *y = b;
    for (size_t i = 0; i < n; i++) {
        if (x[i] != y[i]) {
            return (int)x[i] - (int)y[i];
        }
    }
    return 0;
}
