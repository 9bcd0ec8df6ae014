/* Semihosting operations (ARM "Semihosting for AArch32 and AArch64" v2 numbering; RISC-V uses the same).
 * The trap itself is mcu_semihost_call(), one per architecture (firmware/<arch>/). */
#include <stddef.h>
#include <stdint.h>

#include "mcu_io.h"

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE0 0x04
#define SYS_WRITE 0x05
#define SYS_READ 0x06
#define SYS_FLEN 0x0C
#define SYS_GET_CMDLINE 0x15
#define SYS_EXIT 0x18
#define SYS_EXIT_EXTENDED 0x20

#define ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define ADP_STOPPED_RUN_TIME_ERROR_UNKNOWN 0x20023u

static uint32_t string_length(const char *s)
{
    uint32_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    return n;
}

void mcu_io_init(void)
{
}

void mcu_console_write(const char *text)
{
    mcu_semihost_call(SYS_WRITE0, (void *)text);
}

int32_t mcu_file_open(const char *path, int32_t mode)
{
    uintptr_t block[3] = {(uintptr_t)path, (uintptr_t)mode, (uintptr_t)string_length(path)};
    return mcu_semihost_call(SYS_OPEN, block);
}

int32_t mcu_file_read(int32_t fd, void *buf, uint32_t len)
{
    uintptr_t block[3] = {(uintptr_t)fd, (uintptr_t)buf, (uintptr_t)len};
    int32_t not_read = mcu_semihost_call(SYS_READ, block);
    if (not_read < 0 || (uint32_t)not_read > len) {
        return -1;
    }
    return (int32_t)(len - (uint32_t)not_read);
}

int32_t mcu_file_write(int32_t fd, const void *buf, uint32_t len)
{
    uintptr_t block[3] = {(uintptr_t)fd, (uintptr_t)buf, (uintptr_t)len};
    int32_t not_written = mcu_semihost_call(SYS_WRITE, block);
    if (not_written < 0 || (uint32_t)not_written > len) {
        return -1;
    }
    return (int32_t)(len - (uint32_t)not_written);
}

int32_t mcu_file_length(int32_t fd)
{
    uintptr_t block[1] = {(uintptr_t)fd};
    return mcu_semihost_call(SYS_FLEN, block);
}

int32_t mcu_file_close(int32_t fd)
{
    uintptr_t block[1] = {(uintptr_t)fd};
    return mcu_semihost_call(SYS_CLOSE, block);
}

int32_t mcu_cmdline(char *buf, uint32_t size)
{
    uintptr_t block[2] = {(uintptr_t)buf, (uintptr_t)size};
    if (size == 0) {
        return -1;
    }
    buf[0] = '\0';
    if (mcu_semihost_call(SYS_GET_CMDLINE, block) != 0 || block[1] >= size) {
        buf[size - 1] = '\0';
        return -1;
    }
    buf[block[1]] = '\0';
    return (int32_t)block[1];
}

void mcu_exit(int32_t status)
{
    uintptr_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uintptr_t)status};
    mcu_semihost_call(SYS_EXIT_EXTENDED, block);
    /* A host without SYS_EXIT_EXTENDED returns here: on 32-bit targets SYS_EXIT takes the reason itself,
     * so only success/failure survives. */
    mcu_semihost_call(SYS_EXIT, (void *)(uintptr_t)(status == 0 ? ADP_STOPPED_APPLICATION_EXIT
                                                                  : ADP_STOPPED_RUN_TIME_ERROR_UNKNOWN));
    for (;;) {
    }
}
