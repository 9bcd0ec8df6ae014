/* Polled UART drivers (see mcu_uart.h). No interrupts, no FIFOs beyond the peripheral's own. */
#include <stdint.h>

#include "mcu_board.h"
#include "mcu_board_config.h"
#include "mcu_uart.h"

#define REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))
#define UART(offset) REG(MCU_UART_BASE + (offset))

#if MCU_UART_INIT_STEP_COUNT > 0
static const mcu_reg_step init_steps[MCU_UART_INIT_STEP_COUNT] = MCU_UART_INIT_STEPS;
#endif

static void run_init_steps(void)
{
#if MCU_UART_INIT_STEP_COUNT > 0
    (void)mcu_run_steps(init_steps, MCU_UART_INIT_STEP_COUNT);
#endif
}

#if defined(MCU_UART_STM32_USART_SR)
#define SR 0x00u
#define DR 0x04u
#define BRR 0x08u
#define CR1 0x0Cu
#define SR_RXNE (1u << 5)
#define SR_TXE (1u << 7)
#define SR_TC (1u << 6)
#define CR1_UE (1u << 13)
#define CR1_TE (1u << 3)
#define CR1_RE (1u << 2)

void mcu_uart_init(uint32_t divisor)
{
    run_init_steps();
    UART(CR1) = 0;
    UART(BRR) = divisor;
    UART(CR1) = CR1_UE | CR1_TE | CR1_RE;
}

void mcu_uart_put(uint8_t byte)
{
    while ((UART(SR) & SR_TXE) == 0) {
    }
    UART(DR) = byte;
}

uint8_t mcu_uart_get(void)
{
    while ((UART(SR) & SR_RXNE) == 0) { /* reading SR then DR also clears an overrun */
    }
    return (uint8_t)UART(DR);
}

#elif defined(MCU_UART_STM32_USART) || defined(MCU_UART_STM32_LPUART)
#define CR1 0x00u
#define BRR 0x0Cu
#define ISR 0x1Cu
#define ICR 0x20u
#define RDR 0x24u
#define TDR 0x28u
#define ISR_ORE (1u << 3)
#define ISR_RXNE (1u << 5)
#define ISR_TXE (1u << 7)
#define ICR_ORECF (1u << 3)
#define CR1_UE (1u << 0)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)

void mcu_uart_init(uint32_t divisor)
{
    run_init_steps();
    UART(CR1) = 0;
    UART(BRR) = divisor;
    UART(CR1) = CR1_UE | CR1_TE | CR1_RE;
}

void mcu_uart_put(uint8_t byte)
{
    while ((UART(ISR) & ISR_TXE) == 0) {
    }
    UART(TDR) = byte;
}

uint8_t mcu_uart_get(void)
{
    uint32_t isr;
    while (((isr = UART(ISR)) & ISR_RXNE) == 0) {
        if (isr & ISR_ORE) {
            UART(ICR) = ICR_ORECF; /* an overrun stops reception until cleared; the frame CRC catches the loss */
        }
    }
    return (uint8_t)UART(RDR);
}

#elif defined(MCU_UART_CMSDK_UART)
#define DATA 0x00u
#define STATE 0x04u
#define CTRL 0x08u
#define BAUDDIV 0x10u
#define STATE_TX_FULL (1u << 0)
#define STATE_RX_FULL (1u << 1)
#define CTRL_TX_EN (1u << 0)
#define CTRL_RX_EN (1u << 1)

void mcu_uart_init(uint32_t divisor)
{
    run_init_steps();
    UART(BAUDDIV) = divisor;
    UART(CTRL) = CTRL_TX_EN | CTRL_RX_EN;
}

void mcu_uart_put(uint8_t byte)
{
    while (UART(STATE) & STATE_TX_FULL) {
    }
    UART(DATA) = byte;
}

uint8_t mcu_uart_get(void)
{
    while ((UART(STATE) & STATE_RX_FULL) == 0) {
    }
    return (uint8_t)UART(DATA);
}

#elif defined(MCU_UART_SIFIVE_UART)
#define TXDATA 0x00u
#define RXDATA 0x04u
#define TXCTRL 0x08u
#define RXCTRL 0x0Cu
#define DIV 0x18u
#define FIFO_FLAG (1u << 31) /* txdata: full; rxdata: empty */

void mcu_uart_init(uint32_t divisor)
{
    run_init_steps();
    UART(DIV) = divisor;
    UART(TXCTRL) = 1u; /* txen, one stop bit */
    UART(RXCTRL) = 1u; /* rxen */
}

void mcu_uart_put(uint8_t byte)
{
    while (UART(TXDATA) & FIFO_FLAG) {
    }
    UART(TXDATA) = byte;
}

uint8_t mcu_uart_get(void)
{
    uint32_t word;
    while ((word = UART(RXDATA)) & FIFO_FLAG) { /* one read pops the FIFO: keep the word that had data */
    }
    return (uint8_t)word;
}

#else
#error "no UART for this image: the board file needs a [uart] table (or [emulator.uart]) for --io uart"
#endif
