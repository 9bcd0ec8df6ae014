/* The libc functions the firmware provides (firmware/common/mcu_string.c): the only ones generated code may
 * call. The firmware is freestanding, so <string.h> is not available on every toolchain. */
#ifndef MCU_STRING_H
#define MCU_STRING_H

#include <stddef.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int value, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#endif
