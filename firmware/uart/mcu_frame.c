/* Frames over the board's UART (see mcu_frame.h), and the console and exit of mcu_io.h on top of them. */
#include <stdint.h>

#include "mcu_board_config.h"
#include "mcu_board.h"
#include "mcu_frame.h"
#include "mcu_io.h"
#include "mcu_uart.h"

static const uint8_t magic[4] = {'M', 'C', 'U', 'F'};

uint32_t mcu_crc32_update(uint32_t crc, const uint8_t *bytes, uint32_t n)
{
    crc = ~crc;
    for (uint32_t i = 0; i < n; i++) {
        crc ^= bytes[i];
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

static void put_bytes(const uint8_t *bytes, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        mcu_uart_put(bytes[i]);
    }
}

static void put_u32(uint32_t value)
{
    uint8_t le[4] = {(uint8_t)value, (uint8_t)(value >> 8), (uint8_t)(value >> 16), (uint8_t)(value >> 24)};
    put_bytes(le, 4);
}

static uint32_t get_u32(uint32_t *crc)
{
    uint8_t le[4];
    for (int i = 0; i < 4; i++) {
        le[i] = mcu_uart_get();
    }
    if (crc != 0) {
        *crc = mcu_crc32_update(*crc, le, 4);
    }
    return (uint32_t)le[0] | (uint32_t)le[1] << 8 | (uint32_t)le[2] << 16 | (uint32_t)le[3] << 24;
}

void mcu_frame_send(uint8_t type, const mcu_span *spans, uint32_t count)
{
    uint32_t length = 0;
    for (uint32_t i = 0; i < count; i++) {
        length += spans[i].size;
    }
    uint8_t head[5] = {type, (uint8_t)length, (uint8_t)(length >> 8), (uint8_t)(length >> 16), (uint8_t)(length >> 24)};
    uint32_t crc = mcu_crc32_update(0, head, 5);
    put_bytes(magic, 4);
    put_bytes(head, 5);
    for (uint32_t i = 0; i < count; i++) {
        put_bytes(spans[i].data, spans[i].size);
        crc = mcu_crc32_update(crc, spans[i].data, spans[i].size);
    }
    put_u32(crc);
}

static void wait_for_magic(void)
{
    uint32_t matched = 0;
    while (matched < 4) {
        uint8_t byte = mcu_uart_get();
        matched = byte == magic[matched] ? matched + 1u : (byte == magic[0] ? 1u : 0u);
    }
}

int32_t mcu_frame_receive(uint8_t type, const mcu_span *spans, uint32_t count)
{
    wait_for_magic();
    uint8_t got_type = mcu_uart_get();
    uint32_t crc = mcu_crc32_update(0, &got_type, 1);
    uint32_t length = get_u32(&crc);
    uint32_t expected = 0;
    for (uint32_t i = 0; i < count; i++) {
        expected += spans[i].size;
    }
    if (got_type != type) {
        return MCU_FRAME_BAD_TYPE;
    }
    if (length != expected) {
        return MCU_FRAME_BAD_LENGTH;
    }
    for (uint32_t i = 0; i < count; i++) {
        uint8_t *p = spans[i].data;
        for (uint32_t j = 0; j < spans[i].size; j++) {
            p[j] = mcu_uart_get();
        }
        crc = mcu_crc32_update(crc, p, spans[i].size);
    }
    return get_u32(0) == crc ? MCU_FRAME_OK : MCU_FRAME_BAD_CRC;
}

/* ---- mcu_io.h over frames ---------------------------------------------------------------------------- */

void mcu_io_init(void)
{
    uint32_t divisor = mcu_board_clock_failed_step() == 0 ? MCU_UART_DIVISOR : MCU_UART_DIVISOR_RESET;
    mcu_uart_init(divisor);
}

void mcu_console_write(const char *text)
{
    uint32_t n = 0;
    while (text[n] != '\0') {
        n++;
    }
    mcu_span span = {(void *)(uintptr_t)text, n};
    mcu_frame_send(MCU_FRAME_TEXT, &span, 1);
}

void mcu_exit(int32_t status)
{
    uint32_t word = (uint32_t)status;
    mcu_span span = {&word, 4};
    mcu_frame_send(MCU_FRAME_EXIT, &span, 1);
    for (;;) { /* nothing left to do: the host stops the emulator, or the board waits for a reset */
    }
}
