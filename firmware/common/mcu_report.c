/* "MCUTOOL <record> key=value ..." lines (see mcu_report.h), built in a small buffer and written with one
 * console write per buffer (a semihosting call, or a 'T' frame under --io uart). Decimal conversion by subtracting powers of ten: no division helpers. */
#include <stdint.h>

#include "mcu_io.h"
#include "mcu_report.h"

#define LINE_CAPACITY 120

static char line[LINE_CAPACITY + 2];
static uint32_t line_len;

static void flush(void)
{
    if (line_len > 0) {
        line[line_len] = '\0';
        mcu_console_write(line);
        line_len = 0;
    }
}

static void put_char(char c)
{
    if (line_len >= LINE_CAPACITY) {
        flush();
    }
    line[line_len++] = c;
}

static void put_text(const char *s)
{
    while (*s != '\0') {
        put_char(*s++);
    }
}

static const uint64_t powers_of_ten[20] = {
    10000000000000000000ull, 1000000000000000000ull, 100000000000000000ull, 10000000000000000ull,
    1000000000000000ull, 100000000000000ull, 10000000000000ull, 1000000000000ull, 100000000000ull,
    10000000000ull, 1000000000ull, 100000000ull, 10000000ull, 1000000ull, 100000ull, 10000ull, 1000ull,
    100ull, 10ull, 1ull,
};

static void put_decimal(uint64_t value)
{
    int started = 0;
    for (int i = 0; i < 20; i++) {
        char digit = '0';
        while (value >= powers_of_ten[i]) {
            value -= powers_of_ten[i];
            digit++;
        }
        if (digit != '0' || started || i == 19) {
            put_char(digit);
            started = 1;
        }
    }
}

static void put_key(const char *key)
{
    put_char(' ');
    put_text(key);
    put_char('=');
}

void mcu_report_begin(const char *record)
{
    if (line_len > 0) { /* an unfinished line (a fault struck mid-report): end it first */
        put_char('\n');
        flush();
    }
    put_text("MCUTOOL ");
    put_text(record);
}

void mcu_report_u64(const char *key, uint64_t value)
{
    put_key(key);
    put_decimal(value);
}

void mcu_report_hex(const char *key, uint32_t value)
{
    static const char digits[] = "0123456789abcdef";
    put_key(key);
    put_text("0x");
    for (int shift = 28; shift >= 0; shift -= 4) {
        put_char(digits[(value >> shift) & 0xFu]);
    }
}

void mcu_report_str(const char *key, const char *value)
{
    put_key(key);
    put_text(value);
}

void mcu_report_end(void)
{
    put_char('\n');
    flush();
}
