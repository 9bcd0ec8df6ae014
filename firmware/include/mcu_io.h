/* Host I/O for mcutool firmware: console, host files and exit.
 *
 * Two back ends, one per build (mcutool compile --io): semihosting (firmware/semihosting/: console, host
 * files, exit) and UART (firmware/uart/: console and exit as frames on the board's serial port, see
 * mcu_frame.h; the host-file calls do not exist there). Under semihosting, under QEMU
 * (-semihosting-config enable=on,target=native) file names are relative to QEMU's working directory; on a board the debugger (openocd `arm semihosting enable`) serves the same calls.
 * All calls are synchronous; nothing here allocates.
 */
#ifndef MCU_IO_H
#define MCU_IO_H

#include <stdint.h>

/* SYS_OPEN modes (ISO C fopen modes, in the order the semihosting spec numbers them). */
#define MCU_FILE_READ_BINARY 1  /* "rb" */
#define MCU_FILE_WRITE_BINARY 5 /* "wb" */

/* Exit statuses the firmware uses itself (main's return value is passed through unchanged). */
#define MCU_EXIT_FAULT 3   /* a fault or unexpected exception was reported */
#define MCU_EXIT_IO 4      /* a host file could not be opened, read or written */

/* Starts the back end (mcu_board_init calls it before main): a UART's pins, clocks and baud rate. */
void mcu_io_init(void);

/* The one architecture-specific piece: trap into the debugger/emulator with operation `op`. */
int32_t mcu_semihost_call(int32_t op, void *arg);

void mcu_console_write(const char *text);          /* NUL-terminated text to the console */
int32_t mcu_file_open(const char *path, int32_t mode); /* handle >= 0, or -1 */
int32_t mcu_file_read(int32_t fd, void *buf, uint32_t len);        /* bytes read, or -1 */
int32_t mcu_file_write(int32_t fd, const void *buf, uint32_t len); /* bytes written, or -1 */
int32_t mcu_file_length(int32_t fd);                                /* bytes, or -1 */
int32_t mcu_file_close(int32_t fd);                                 /* 0, or -1 */
/* The command line the emulator passes (QEMU: -semihosting-config ...,arg=A,arg=B): "A B".
 * Returns its length, or -1; `buf` is always NUL-terminated. */
int32_t mcu_cmdline(char *buf, uint32_t size);
/* Ends the program with `status` as the emulator's exit code (SYS_EXIT_EXTENDED). */
void mcu_exit(int32_t status) __attribute__((noreturn));

#endif
