/* RV32 reset: global pointer, stack, trap vector; paint the stack, copy .data, zero .bss, start the
 * counter, run main and exit with its status. Machine mode throughout. */
    .section .text.init, "ax", @progbits
    .globl _start
    .type _start, @function
_start:
    /* No linker relaxation in the start-up code: gp is not set yet for the first `la`, and relaxing
     * `la t2, __data_load` (an absolute symbol: LOADADDR(.data)) to a gp-relative access fails with
     * "relocation truncated to fit: R_RISCV_GPREL_I" for some image sizes (seen with a 1 MB image). */
    .option push
    .option norelax
    la    gp, __global_pointer$
    la    sp, __stack_top
    la    t0, mcu_trap_entry
    .option push
    .option arch, +zicsr           /* binutils 2.40 wants Zicsr named; gcc 12's rv32imac multilib does not */
    csrw  mtvec, t0                /* direct mode: every trap to mcu_trap_entry */
    .option pop

    /* Paint the whole stack reserve (nothing lives on it yet). */
    la    t0, __stack_bottom
    la    t1, __stack_top
    li    t2, 0xC5ACCE55           /* MCU_STACK_PAINT */
1:  bgeu  t0, t1, 2f
    sw    t2, 0(t0)
    addi  t0, t0, 4
    j     1b
2:
    /* .data: copy its initial values from flash. */
    la    t0, __data_start
    la    t1, __data_end
    la    t2, __data_load
3:  bgeu  t0, t1, 4f
    lw    t3, 0(t2)
    sw    t3, 0(t0)
    addi  t0, t0, 4
    addi  t2, t2, 4
    j     3b
4:
    /* .bss: zero. */
    la    t0, __bss_start
    la    t1, __bss_end
5:  bgeu  t0, t1, 6f
    sw    zero, 0(t0)
    addi  t0, t0, 4
    j     5b
6:
    call  mcu_board_init           /* clocks, console (mcu_board.h) */
    call  mcu_counter_init
    li    a0, 0                    /* argc */
    li    a1, 0                    /* argv */
    call  main
    call  mcu_exit                 /* a0 = main's return value */
    .option pop
    .size _start, . - _start

/* Traps: report mepc/mcause/mtval from a fresh stack (the old one may be what failed); never returns. */
    .section .text.mcu_trap_entry, "ax", @progbits
    .globl mcu_trap_entry
    .type mcu_trap_entry, @function
    .balign 4                      /* mtvec needs a 4-byte aligned base */
mcu_trap_entry:
    mv    a0, sp
    la    sp, __stack_top
    call  mcu_trap_report
7:  j     7b
    .size mcu_trap_entry, . - mcu_trap_entry

/* Semihosting trap: the uncompressed slli/ebreak/srai triple, in one 16-byte block so that it never
 * straddles a page. a0 = operation, a1 = argument; result in a0. */
    .section .text.mcu_semihost_call, "ax", @progbits
    .globl mcu_semihost_call
    .type mcu_semihost_call, @function
    .balign 16
    .option push
    .option norvc
mcu_semihost_call:
    slli  x0, x0, 0x1f
    ebreak
    srai  x0, x0, 7
    ret
    .option pop
    .size mcu_semihost_call, . - mcu_semihost_call

/* A loop of known length, for checking the counter: for n >= 1 it executes exactly 2n + 1
 * instructions (n x addi/bnez, then ret). */
    .section .text.mcu_spin, "ax", @progbits
    .globl mcu_spin
    .type mcu_spin, @function
mcu_spin:
1:  addi  a0, a0, -1
    bnez  a0, 1b
    ret
    .size mcu_spin, . - mcu_spin
