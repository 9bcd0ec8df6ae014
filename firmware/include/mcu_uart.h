/* Polled UART driver (firmware/uart/mcu_uart.c). Which peripheral, its base address and its baud divisors
 * come from the board file through mcu_board_config.h:
 *   MCU_UART_STM32_USART_SR  STM32F4 USART (SR/DR/BRR/CR1; RM0090 §30.6)
 *   MCU_UART_STM32_USART     STM32F7/L4 USART (CR1/BRR/ISR/ICR/RDR/TDR; RM0385 §31.8, RM0432 §50.8)
 *   MCU_UART_STM32_LPUART    STM32L4 LPUART (same registers, BRR = 256 * f / baud; RM0432 §51.7)
 *   MCU_UART_CMSDK_UART      ARM CMSDK APB UART (QEMU mps2 machines; ARM DDI 0479C §4.3)
 *   MCU_UART_SIFIVE_UART     SiFive UART (FE310-G002 manual ch. 18)
 * MCU_UART_INIT_STEPS (pins, clock enables, I/O supply) run first, then the divisor is written. */
#ifndef MCU_UART_H
#define MCU_UART_H

#include <stdint.h>

void mcu_uart_init(uint32_t divisor);
void mcu_uart_put(uint8_t byte);
uint8_t mcu_uart_get(void); /* blocks until a byte arrives */

#endif
