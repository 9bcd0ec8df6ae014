/* Cortex-M reset: point VTOR at our table, paint the stack, copy .data, zero .bss, set up clocks and
 * console (mcu_board_init), start the counter,
 * run main and exit with its status. Written for ARMv6-M and up (no Thumb-2-only addressing). */
    .syntax unified
    .thumb

    .section .text.Reset_Handler, "ax", %progbits
    .global Reset_Handler
    .type Reset_Handler, %function
    .thumb_func
Reset_Handler:
    /* The image may be entered through an alias (flash at 0x0 and 0x08000000): use its own table. */
    ldr   r0, =mcu_vectors
    ldr   r1, =0xE000ED08          /* SCB->VTOR */
    str   r0, [r1]
    ldr   r0, =__stack_top         /* also when a loader jumped here with another stack pointer */
    mov   sp, r0

    /* Paint the whole stack reserve (nothing lives on it yet). */
    ldr   r0, =__stack_bottom
    ldr   r1, =__stack_top
    ldr   r2, =0xC5ACCE55          /* MCU_STACK_PAINT */
1:  cmp   r0, r1
    bhs   2f
    str   r2, [r0]
    adds  r0, r0, #4
    b     1b
2:
    /* .data: copy its initial values from flash. */
    ldr   r0, =__data_start
    ldr   r1, =__data_end
    ldr   r2, =__data_load
3:  cmp   r0, r1
    bhs   4f
    ldr   r3, [r2]
    str   r3, [r0]
    adds  r0, r0, #4
    adds  r2, r2, #4
    b     3b
4:
    /* .bss: zero. */
    ldr   r0, =__bss_start
    ldr   r1, =__bss_end
    movs  r2, #0
5:  cmp   r0, r1
    bhs   6f
    str   r2, [r0]
    adds  r0, r0, #4
    b     5b
6:
    bl    mcu_board_init           /* clocks, caches, console (mcu_board.h) */
    bl    mcu_counter_init
    bl    main
    bl    mcu_exit                 /* r0 = main's return value */
    .size Reset_Handler, . - Reset_Handler

/* Faults (HardFault, MemManage, BusFault, UsageFault) and unexpected exceptions.
 * Reads the stacked PC/LR/xPSR while the faulting stack is still intact, then moves to a fresh stack
 * (the old one may be what failed) and reports: mcu_fault_report(sp, pc, lr, xpsr) never returns. */
    .section .text.mcu_fault_entry, "ax", %progbits
    .global mcu_fault_entry
    .type mcu_fault_entry, %function
    .thumb_func
mcu_fault_entry:
    movs  r0, #4
    mov   r1, lr
    tst   r0, r1                   /* EXC_RETURN bit 2: which stack holds the frame */
    bne   1f
    mrs   r0, msp
    b     2f
1:  mrs   r0, psp
2:  movs  r1, #0                   /* pc, lr, xpsr = 0 when the frame is outside the stack reserve */
    movs  r2, #0
    movs  r3, #0
    ldr   r4, =__stack_bottom
    cmp   r0, r4
    blo   3f
    ldr   r4, =__stack_top
    subs  r4, r4, #32
    cmp   r0, r4
    bhi   3f
    ldr   r1, [r0, #24]            /* stacked PC: the faulting instruction */
    ldr   r2, [r0, #20]            /* stacked LR */
    ldr   r3, [r0, #28]            /* stacked xPSR */
3:  ldr   r4, =__stack_top
    mov   sp, r4
    bl    mcu_fault_report
4:  b     4b
    .size mcu_fault_entry, . - mcu_fault_entry

    .section .text.mcu_semihost_call, "ax", %progbits
    .global mcu_semihost_call
    .type mcu_semihost_call, %function
    .thumb_func
mcu_semihost_call:                 /* r0 = operation, r1 = argument; result in r0 */
    bkpt  0xab
    bx    lr
    .size mcu_semihost_call, . - mcu_semihost_call

/* A loop of known length, for checking the counter: for n >= 1 it executes exactly 2n + 1
 * instructions (n x subs/bne, then bx lr). */
    .section .text.mcu_spin, "ax", %progbits
    .global mcu_spin
    .type mcu_spin, %function
    .thumb_func
mcu_spin:
1:  subs  r0, r0, #1
    bne   1b
    bx    lr
    .size mcu_spin, . - mcu_spin
