/* The line protocol between firmware and host (mcutool/emulate/qemu.py parses it).
 *
 * Every line the host reads is  "MCUTOOL <record> key=value key=value ...\n"  — for example
 *   MCUTOOL count name=loop instructions=200000
 *   MCUTOOL stack high_water=312 size=2048
 *   MCUTOOL fault exception=3 pc=0x000001a4 cfsr=0x00010000 hfsr=0x40000000 ...
 * Values are decimal, or hex with a 0x prefix. Integer formatting only: no printf, no floats.
 */
#ifndef MCU_REPORT_H
#define MCU_REPORT_H

#include <stdint.h>

void mcu_report_begin(const char *record);
void mcu_report_u64(const char *key, uint64_t value);
void mcu_report_hex(const char *key, uint32_t value);
void mcu_report_str(const char *key, const char *value); /* value must not contain spaces */
void mcu_report_end(void);

#endif
