/*
 * Unit tests for peripheral inference in rules mode, on Unicorn directly
 * (tests/unit/infer/shell.h), with Thumb snippets assembled by
 * arm-none-eabi-as: status-poll idioms, UART console and input, event-driven
 * interrupts, delay loops, register models, device map export/import,
 * patch, state save/restore, determinism.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "shell.h"

/* Assemble, create a machine (code at 0), run from 0 until bkpt. */
static uc_err run_snippet(struct shell *s, const char *src, const char *cpu, int model,
                          const char *input, uint64_t max)
{
	sh_load(s, src, cpu, model, NULL);
	if (input)
		sh_input(s, input);
	return sh_run(s, 0, 0x20008000, max);
}

static uint32_t reg(struct shell *s, int id)
{
	uint32_t v = 0;
	uc_reg_read(s->uc, id, &v);
	return v;
}

static void test_windows(void **state)
{
	assert_true(ms_infer_is_peripheral_addr(0x40000000));
	assert_true(ms_infer_is_peripheral_addr(0x5fffffff));
	assert_true(ms_infer_is_peripheral_addr(0xE0042000));
	assert_true(ms_infer_is_peripheral_addr(0xA0000000));
	assert_false(ms_infer_is_peripheral_addr(0xE000E010)); /* SysTick: the engine's */
	assert_false(ms_infer_is_peripheral_addr(0x20000000));
	assert_false(ms_infer_is_peripheral_addr(0x60000000)); /* external RAM: memory */
	assert_false(ms_infer_is_peripheral_addr(0x08000000));
	assert_true(ms_infer_is_peripheral_addr(0x10000010)); /* FICR */
	assert_false(
	    ms_infer_is_peripheral_addr(0x10001000)); /* UICR: flash, loaded from the image */
}

static void test_poll_tst_beq(void **state)
{
	struct shell s;
	uc_err er = run_snippet(&s,
	                        "ldr r1, =0x40011000\n"
	                        "1: ldr r2, [r1, #0]\n"
	                        "tst r2, #0x20\n"
	                        "beq 1b\n"
	                        "movs r0, #7\n"
	                        "bkpt\n",
	                        "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL, 100000);
	assert_int_equal(er, UC_ERR_EXCEPTION); /* reached bkpt: the loop was left */
	assert_int_equal(reg(&s, UC_ARM_REG_R0), 7);
	assert_int_equal(sh_count(&s, "infer.region"), 1);
	json_t *p = sh_find(&s, "infer.poll", "ready");
	assert_non_null(p);
	assert_string_equal(json_string_value(json_object_get(p, "mask")), "0x20");
	assert_string_equal(json_string_value(json_object_get(p, "value")), "0x20");
	assert_string_equal(json_string_value(json_object_get(p, "insn")), "ldr r2, [r1]");
	json_t *r = sh_find(&s, "infer.region", NULL);
	assert_string_equal(json_string_value(json_object_get(r, "pc")), "0x2");
	assert_string_equal(json_string_value(json_object_get(r, "base")), "0x40011000");
	sh_free(&s);
}

/* A busy flag the firmware wrote: leave when clear, although it remembers the write. */
static void test_poll_busy_clear(void **state)
{
	struct shell s;
	uc_err er = run_snippet(&s,
	                        "ldr r1, =0x40005400\n"
	                        "movs r2, #1\n"
	                        "str r2, [r1, #0x18]\n"
	                        "1: ldr r2, [r1, #0x18]\n"
	                        "lsls r2, r2, #31\n"
	                        "bmi 1b\n"
	                        "bkpt\n",
	                        "cortex-m0", UC_CPU_ARM_CORTEX_M0, NULL, 100000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	json_t *p = sh_find(&s, "infer.poll", NULL);
	assert_non_null(p);
	assert_string_equal(json_string_value(json_object_get(p, "mask")), "0x1");
	assert_string_equal(json_string_value(json_object_get(p, "value")), "0x0");
	sh_free(&s);
}

/* Clock switch: SWS (bits 3:2) must equal SW (bits 1:0) = PLL; the write is remembered. */
static void test_poll_multibit(void **state)
{
	struct shell s;
	uc_err er = run_snippet(&s,
	                        "ldr r1, =0x40021004\n"
	                        "ldr r2, [r1]\n"
	                        "bic r2, r2, #3\n"
	                        "orr r2, r2, #2\n"
	                        "str r2, [r1]\n"
	                        "1: ldr r2, [r1]\n"
	                        "and r2, r2, #0xc\n"
	                        "cmp r2, #8\n"
	                        "bne 1b\n"
	                        "ldr r3, [r1]\n"
	                        "and r3, r3, #3\n"
	                        "bkpt\n",
	                        "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL, 100000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_int_equal(reg(&s, UC_ARM_REG_R3), 2);
	json_t *p = sh_find(&s, "infer.poll", NULL);
	assert_non_null(p);
	assert_string_equal(json_string_value(json_object_get(p, "value")), "0x8");
	sh_free(&s);
}

static void test_poll_ubfx(void **state)
{
	struct shell s;
	uc_err er = run_snippet(&s,
	                        "ldr r1, =0x40023800\n"
	                        "1: ldr r2, [r1, #8]\n"
	                        "ubfx r2, r2, #2, #2\n"
	                        "cmp r2, #2\n"
	                        "bne 1b\n"
	                        "bkpt\n",
	                        "cortex-m4", UC_CPU_ARM_CORTEX_M4, NULL, 100000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	json_t *p = sh_find(&s, "infer.poll", NULL);
	assert_non_null(p);
	assert_string_equal(json_string_value(json_object_get(p, "value")), "0x8");
	sh_free(&s);
}

static void test_poll_cbnz(void **state)
{
	struct shell s;
	uc_err er = run_snippet(&s,
	                        "ldr r1, =0x40003000\n"
	                        "1: ldr r2, [r1, #4]\n"
	                        "ands r2, r2, #0x40\n"
	                        "cbnz r2, 2f\n"
	                        "b 1b\n"
	                        "2: bkpt\n",
	                        "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL, 100000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	json_t *p = sh_find(&s, "infer.poll", NULL);
	assert_non_null(p);
	assert_string_equal(json_string_value(json_object_get(p, "mask")), "0x40");
	sh_free(&s);
}

/* The test is in the caller: `while (!ready()) ;` with ready() returning the bit. */
static void test_poll_through_return(void **state)
{
	struct shell s;
	uc_err er = run_snippet(&s,
	                        "1: bl ready\n"
	                        "cmp r0, #0\n"
	                        "beq 1b\n"
	                        "bkpt\n"
	                        "ready: ldr r1, =0x40013800\n"
	                        "ldr r0, [r1]\n"
	                        "ubfx r0, r0, #5, #1\n"
	                        "bx lr\n",
	                        "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL, 100000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	json_t *p = sh_find(&s, "infer.poll", NULL);
	assert_non_null(p);
	assert_string_equal(json_string_value(json_object_get(p, "mask")), "0x20");
	sh_free(&s);
}

/* A loop with a timeout counter still counts as a poll (the retry branch is the loop). */
static void test_poll_with_timeout(void **state)
{
	struct shell s;
	uc_err er = run_snippet(&s,
	                        "ldr r1, =0x40007000\n"
	                        "movs r4, #100\n"
	                        "1: ldr r2, [r1, #0x10]\n"
	                        "lsls r2, r2, #30\n"
	                        "bmi 2f\n"
	                        "subs r4, #1\n"
	                        "bne 1b\n"
	                        "movs r0, #0xee\n"
	                        "bkpt\n"
	                        "2: movs r0, #1\n"
	                        "bkpt\n",
	                        "cortex-m0", UC_CPU_ARM_CORTEX_M0, NULL, 100000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_int_equal(reg(&s, UC_ARM_REG_R0),
	                 1); /* left through the ready path, not the timeout */
	sh_free(&s);
}

/*
 * HAL-style wait: the flag test, then a call to read the tick and a
 * timeout check that exits, the loop closing with an unconditional branch.
 * The timeout must not be mistaken for the way out.
 */
static void test_poll_hal_timeout(void **state)
{
	struct shell s;
	uc_err er = run_snippet(&s,
	                        "ldr r4, =0x40013800\n"
	                        "movs r6, #200\n"
	                        "bl tick\n"
	                        "mov r5, r0\n"
	                        "1: ldr r3, [r4]\n"
	                        "tst r3, #0x40\n"
	                        "bne 2f\n"
	                        "bl tick\n"
	                        "subs r0, r0, r5\n"
	                        "cmp r0, r6\n"
	                        "bhi 3f\n"
	                        "b 1b\n"
	                        "2: movs r0, #1\n"
	                        "bkpt\n"
	                        "3: movs r0, #0xee\n"
	                        "bkpt\n"
	                        "tick: ldr r0, =0x20000400\n"
	                        "ldr r1, [r0]\n"
	                        "adds r1, #1\n"
	                        "str r1, [r0]\n"
	                        "mov r0, r1\n"
	                        "bx lr\n",
	                        "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL, 100000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_int_equal(reg(&s, UC_ARM_REG_R0), 1); /* the flag, not the timeout */
	json_t *p = sh_find(&s, "infer.poll", NULL);
	assert_non_null(p);
	assert_string_equal(json_string_value(json_object_get(p, "mask")), "0x40");
	sh_free(&s);
}

/* Ready stays ready: after waiting for HSERDY, a later check elsewhere sees it set. */
static void test_ready_latches(void **state)
{
	struct shell s;
	uc_err er = run_snippet(&s,
	                        "ldr r1, =0x40021000\n"
	                        "ldr r2, [r1]\n"
	                        "orr r2, r2, #0x10000\n"
	                        "str r2, [r1]\n"
	                        "1: ldr r2, [r1]\n"
	                        "tst r2, #0x20000\n"
	                        "beq 1b\n"
	                        "bl check\n"
	                        "bkpt\n"
	                        "check: ldr r3, [r1]\n"
	                        "ubfx r0, r3, #17, #1\n"
	                        "bx lr\n",
	                        "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL, 100000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_int_equal(reg(&s, UC_ARM_REG_R0), 1);
	assert_int_equal(reg(&s, UC_ARM_REG_R3) & 0x10000, 0x10000); /* HSEON remembered */
	sh_free(&s);
}

static const char *UART_F1 =
    /* STM32F1 USART1: SR +0 (RXNE bit 5, TXE bit 7), DR +4. */
    "ldr r4, =0x40013800\n"
    "adr r5, msg\n"
    "1: ldrb r0, [r5], #1\n"
    "cbz r0, 2f\n"
    "bl putc\n"
    "b 1b\n"
    "2: bl getc\n"
    "mov r6, r0\n"
    "bl putc\n"
    "cmp r6, #10\n"
    "bne 2b\n"
    "bkpt\n"
    "putc: ldr r1, [r4]\n"
    "tst r1, #0x80\n"
    "beq putc\n"
    "str r0, [r4, #4]\n"
    "bx lr\n"
    "getc: ldr r1, [r4]\n"
    "tst r1, #0x20\n"
    "beq getc\n"
    "ldr r0, [r4, #4]\n"
    "uxtb r0, r0\n"
    "bx lr\n"
    ".align 2\n"
    "msg: .asciz \"Hello\\n\"\n";

static void test_uart_console_and_input(void **state)
{
	struct shell s;
	uc_err er = run_snippet(&s, UART_F1, "cortex-m3", UC_CPU_ARM_CORTEX_M3, "abc\n", 200000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_string_equal(s.out, "Hello\nabc\n");
	assert_non_null(sh_find(&s, "infer.register", "tx"));
	json_t *rx = sh_find(&s, "infer.register", "rx-ready");
	assert_non_null(rx);
	assert_string_equal(json_string_value(json_object_get(rx, "mask")), "0x20");
	assert_string_equal(json_string_value(json_object_get(rx, "data")), "0x40013804");
	/* Peripherals view: the data register is a data register. */
	json_t *ps = ms_infer_peripherals(s.inf);
	assert_int_equal(json_array_size(ps), 1);
	json_t *p0 = json_array_get(ps, 0);
	assert_true(json_is_true(json_object_get(p0, "uart")));
	size_t i;
	json_t *r;
	int data = 0, status = 0;
	json_array_foreach(json_object_get(p0, "registers"), i, r)
	{
		const char *cat = json_string_value(json_object_get(r, "category"));
		if (strcmp(json_string_value(json_object_get(r, "addr")), "0x40013804") == 0) {
			assert_string_equal(cat, "data");
			data++;
		}
		if (strcmp(json_string_value(json_object_get(r, "addr")), "0x40013800") == 0) {
			assert_string_equal(cat, "status");
			status++;
		}
	}
	assert_int_equal(data, 1);
	assert_int_equal(status, 1);
	json_decref(ps);
	sh_free(&s);
}

/* NXP Kinetis UART: byte registers packed in words (S1 at +4, D at +7). */
static void test_uart_byte_registers(void **state)
{
	struct shell s;
	uc_err er = run_snippet(&s,
	                        "ldr r4, =0x4006a000\n"
	                        "adr r5, msg\n"
	                        "1: ldrb r0, [r5], #1\n"
	                        "cbz r0, 2f\n"
	                        "bl putc\n"
	                        "b 1b\n"
	                        "2: bl getc\n"
	                        "mov r6, r0\n"
	                        "bl putc\n"
	                        "cmp r6, #10\n"
	                        "bne 2b\n"
	                        "bkpt\n"
	                        "putc: ldrb r1, [r4, #4]\n"
	                        "tst r1, #0x80\n"
	                        "beq putc\n"
	                        "strb r0, [r4, #7]\n"
	                        "bx lr\n"
	                        "getc: ldrb r1, [r4, #4]\n"
	                        "tst r1, #0x20\n"
	                        "beq getc\n"
	                        "ldrb r0, [r4, #7]\n"
	                        "bx lr\n"
	                        ".align 2\n"
	                        "msg: .asciz \"Kinetis\\n\"\n",
	                        "cortex-m4", UC_CPU_ARM_CORTEX_M4, "k64\n", 200000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_string_equal(s.out, "Kinetis\nk64\n");
	json_t *rx = sh_find(&s, "infer.register", "rx-ready");
	assert_non_null(rx);
	assert_string_equal(json_string_value(json_object_get(rx, "addr")), "0x4006a004");
	assert_string_equal(json_string_value(json_object_get(rx, "data")), "0x4006a007");
	sh_free(&s);
}

/*
 * Arduino-style write: "if the transmitter is ready, write the holding
 * register, else queue and enable the interrupt" (SAM3X UART: SR +0x14,
 * TXRDY bit 1, THR +0x1c), with no polling loop at all.
 */
static void test_uart_write_if_ready(void **state)
{
	struct shell s;
	uc_err er = run_snippet(&s,
	                        "ldr r4, =0x400e0800\n"
	                        "adr r5, msg\n"
	                        "1: ldrb r0, [r5], #1\n"
	                        "cbz r0, 3f\n"
	                        "ldr r1, [r4, #0x14]\n"
	                        "tst r1, #2\n"
	                        "beq 2f\n"
	                        "str r0, [r4, #0x1c]\n"
	                        "b 1b\n"
	                        "2: ldr r2, =0x20000100\n" /* the queue: never drained here */
	                        "str r0, [r2]\n"
	                        "b 1b\n"
	                        "3: bkpt\n"
	                        ".align 2\n"
	                        "msg: .asciz \"Due says hi\\n\"\n",
	                        "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL, 100000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_string_equal(s.out, "Due says hi\n");
	sh_free(&s);
}

/*
 * Transmit by DMA (nRF52 UARTE0 at 0x40002000, EasyDMA): Zephyr's
 * poll_out sends one byte per transfer: the byte in RAM, TXD.PTR (+0x544),
 * TXD.MAXCNT (+0x548) = 1, EVENTS_ENDTX (+0x120) = 0, TASKS_STARTTX = 1,
 * wait for ENDTX. Then a whole line in one transfer. A receive buffer
 * (RXD.PTR +0x534, zeroed) started with STARTRX prints nothing.
 */
static const char *UARTE_DMA = "ldr r4, =0x40002000\n"
                               "ldr r1, =0x500\n"
                               "movs r0, #8\n"
                               "str r0, [r4, r1]\n" /* ENABLE: UARTE */
                               "ldr r1, =0x534\n"
                               "ldr r0, =0x20000100\n"
                               "str r0, [r4, r1]\n" /* RXD.PTR: a zeroed buffer */
                               "ldr r1, =0x538\n"
                               "movs r0, #8\n"
                               "str r0, [r4, r1]\n" /* RXD.MAXCNT */
                               "movs r0, #1\n"
                               "str r0, [r4]\n" /* TASKS_STARTRX */
                               "adr r5, msg\n"
                               "1: ldrb r0, [r5]\n"
                               "adds r5, #1\n"
                               "cmp r0, #0\n"
                               "beq 3f\n"
                               "ldr r6, =0x20000000\n"
                               "strb r0, [r6]\n"
                               "ldr r1, =0x544\n"
                               "str r6, [r4, r1]\n" /* TXD.PTR */
                               "ldr r1, =0x548\n"
                               "movs r0, #1\n"
                               "str r0, [r4, r1]\n" /* TXD.MAXCNT */
                               "movs r0, #0\n"
                               "ldr r1, =0x120\n"
                               "str r0, [r4, r1]\n" /* EVENTS_ENDTX = 0 */
                               "movs r0, #1\n"
                               "str r0, [r4, #8]\n" /* TASKS_STARTTX */
                               "2: ldr r0, [r4, r1]\n"
                               "cmp r0, #0\n"
                               "beq 2b\n"
                               "b 1b\n"
                               "3: adr r5, line\n"
                               "ldr r6, =0x20000010\n"
                               "ldr r0, [r5]\n"
                               "str r0, [r6]\n"
                               "ldr r0, [r5, #4]\n"
                               "str r0, [r6, #4]\n" /* the line, in RAM for EasyDMA */
                               "ldr r1, =0x544\n"
                               "str r6, [r4, r1]\n"
                               "ldr r1, =0x548\n"
                               "movs r0, #6\n"
                               "str r0, [r4, r1]\n"
                               "movs r0, #1\n"
                               "str r0, [r4, #8]\n"
                               "bkpt\n"
                               ".align 2\n"
                               "msg: .asciz \"uarte dma\\r\\n\"\n"
                               ".align 2\n"
                               "line: .ascii \"line\\r\\n\"\n"
                               ".ltorg\n";

static void test_uart_dma_transmit(void **state)
{
	struct shell s;
	sh_load(&s, UARTE_DMA, "cortex-m0", UC_CPU_ARM_CORTEX_M0, NULL);
	uc_err er = sh_run(&s, 0, 0x20008000, 200000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_string_equal(s.out, "uarte dma\r\nline\r\n");
	json_t *d = sh_find(&s, "infer.register", "dma-tx");
	assert_non_null(d);
	assert_string_equal(json_string_value(json_object_get(d, "addr")), "0x40002544");
	sh_free(&s);
}

/*
 * A NuttX/HAL-style receive interrupt: the handler reads SR, then CR1,
 * tests RXNE and RXNEIE together and calls a helper that reads DR. No
 * polling loop anywhere on the receive side (USART1, IRQ 37).
 */
static const char *RX_ISR = ".word 0x20008000\n"
                            ".word reset + 1\n"
                            ".rept 14\n.word 0\n.endr\n"
                            ".rept 37\n.word 0\n.endr\n"
                            ".word isr + 1\n" /* IRQ 37 */
                            ".rept 10\n.word 0\n.endr\n"
                            "reset: ldr r4, =0x40013800\n"
                            "adr r5, msg\n"
                            "1: ldrb r0, [r5], #1\n"
                            "cbz r0, 2f\n"
                            "bl putc\n"
                            "b 1b\n"
                            "2: ldr r6, =0x20000000\n"
                            "movs r0, #0\n"
                            "str r0, [r6]\n" /* received count */
                            "ldr r0, [r4, #0x0c]\n"
                            "orr r0, r0, #0x20\n"
                            "str r0, [r4, #0x0c]\n" /* CR1 |= RXNEIE */
                            "ldr r2, =0xE000E104\n"
                            "movs r0, #0x20\n"
                            "str r0, [r2]\n" /* ISER1 bit 5: IRQ 37 */
                            "3: wfi\n"
                            "ldr r0, [r6]\n"
                            "cmp r0, #3\n"
                            "blo 3b\n"
                            "ldrb r0, [r6, #4]\n"
                            "bl putc\n"
                            "ldrb r0, [r6, #5]\n"
                            "bl putc\n"
                            "ldrb r0, [r6, #6]\n"
                            "bl putc\n"
                            "bkpt\n"
                            "putc: ldr r1, [r4]\n"
                            "tst r1, #0x80\n"
                            "beq putc\n"
                            "str r0, [r4, #4]\n"
                            "bx lr\n"
                            "isr: push {r4, lr}\n"
                            "ldr r4, =0x40013800\n"
                            "ldr r0, [r4]\n" /* SR */
                            "ldr r1, [r4, #0x0c]\n" /* CR1 */
                            "tst r0, #0x20\n"
                            "beq 4f\n"
                            "tst r1, #0x20\n"
                            "beq 4f\n"
                            "mov r0, r4\n"
                            "bl rx_char\n"
                            "4: pop {r4, pc}\n"
                            "rx_char: ldr r1, [r0, #4]\n" /* DR */
                            "ldr r2, =0x20000000\n"
                            "ldr r3, [r2]\n"
                            "add r12, r2, #4\n"
                            "strb r1, [r12, r3]\n"
                            "adds r3, #1\n"
                            "str r3, [r2]\n"
                            "bx lr\n"
                            ".align 2\n"
                            "msg: .asciz \"ready\\r\\n\"\n"
                            ".ltorg\n";

static void test_rx_interrupt_helper(void **state)
{
	struct shell s;
	sh_load(&s, RX_ISR, "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL);
	sh_input(&s, "xyz");
	uc_err er = sh_boot(&s, 2000000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_string_equal(s.out, "ready\r\nxyz");
	json_t *rx = sh_find(&s, "infer.register", "rx-ready");
	assert_non_null(rx);
	assert_string_equal(json_string_value(json_object_get(rx, "data")), "0x40013804");
	sh_free(&s);
}

/*
 * The same firmware with RXNEIE never set (CR1 |= TE | RE instead): its
 * handler tests RXNEIE, so waiting input must not raise the line, however
 * long it waits; nothing is taken from the input.
 */
static void test_rx_interrupt_needs_enable(void **state)
{
	char *src = strdup(RX_ISR);
	char *orr = strstr(src, "orr r0, r0, #0x20\n");
	assert_non_null(orr);
	memcpy(orr, "orr r0, r0, #0x0c\n", strlen("orr r0, r0, #0x0c\n"));
	size_t len = 0;
	uint8_t *bin = sh_asm(src, "cortex-m3", &len);
	free(src);
	assert_non_null(bin);
	struct shell s;
	struct ms_err e;
	struct ms_infer_opts o = {0};
	assert_int_equal(sh_init(&s, UC_CPU_ARM_CORTEX_M3, bin, len, 0, &o, &e), 0);
	free(bin);
	sh_input(&s, "xyz");
	uc_err er = sh_boot(&s, 500000);
	assert_int_equal(er, UC_ERR_OK); /* still waiting */
	assert_string_equal(s.out, "ready\r\n");
	assert_int_equal(s.irqs_taken, 0);
	assert_int_equal(s.ispr, 0);
	assert_int_equal(s.inpos, 0);
	sh_free(&s);
}

/*
 * Non-blocking getc (CMSDK UART): "if (!(STATE & RXFULL)) return -1;
 * return DATA;" compiled with an IT block, called from a main loop that
 * retries on -1: the retry loop is in the caller, the decision in the
 * helper, and there is no branch at all around the data read.
 */
static void test_nonblocking_getc_it_block(void **state)
{
	struct shell s;
	uc_err er = run_snippet(&s,
	                        "ldr r4, =0x40004000\n"
	                        "movs r0, #'>'\n"
	                        "bl putc\n"
	                        "movs r0, #'>'\n"
	                        "bl putc\n"
	                        "movs r0, #'>'\n"
	                        "bl putc\n"
	                        "movs r0, #' '\n"
	                        "bl putc\n"
	                        "1: bl getc\n"
	                        "cmp r0, #0\n"
	                        "blt 1b\n"
	                        "mov r5, r0\n"
	                        "bl putc\n"
	                        "cmp r5, #10\n"
	                        "bne 1b\n"
	                        "bkpt\n"
	                        "putc: ldr r1, [r4, #4]\n"
	                        "lsls r1, r1, #31\n"
	                        "bmi putc\n"
	                        "str r0, [r4]\n"
	                        "bx lr\n"
	                        "getc: ldr r2, [r4, #4]\n"
	                        "lsls r2, r2, #30\n"
	                        "itte mi\n"
	                        "ldrmi r0, [r4]\n"
	                        "uxtbmi r0, r0\n"
	                        "movpl r0, #-1\n"
	                        "bx lr\n",
	                        "cortex-m3", UC_CPU_ARM_CORTEX_M3, "ok\n", 300000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_string_equal(s.out, ">>> ok\n");
	sh_free(&s);
}

/*
 * A helper called once per byte (nRF TWI write: wait for TXDSENT with a
 * timeout, return 0 when sent): the caller calls it again after success,
 * which must not pass for a retry loop.
 */
static void test_per_byte_helper(void **state)
{
	struct shell s;
	uc_err er = run_snippet(&s,
	                        "ldr r4, =0x40003000\n"
	                        "movs r6, #0\n"
	                        "1: mov r0, r6\n"
	                        "bl send\n"
	                        "cmp r0, #0\n"
	                        "bne 2f\n"
	                        "adds r6, #1\n"
	                        "cmp r6, #3\n"
	                        "bne 1b\n"
	                        "2: bkpt\n"
	                        "send: ldr r2, =0x51c\n"
	                        "str r0, [r4, r2]\n"
	                        "ldr r2, =1000\n"
	                        "ldr r3, =0x11c\n"
	                        "3: ldr r1, [r4, r3]\n"
	                        "cmp r1, #0\n"
	                        "beq 4f\n"
	                        "movs r0, #0\n"
	                        "str r0, [r4, r3]\n"
	                        "bx lr\n"
	                        "4: subs r2, #1\n"
	                        "cmp r2, #0\n"
	                        "bne 3b\n"
	                        "movs r0, #1\n"
	                        "bx lr\n",
	                        "cortex-m0", UC_CPU_ARM_CORTEX_M0, NULL, 300000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_int_equal(reg(&s, UC_ARM_REG_R6), 3); /* every byte sent, no timeout */
	json_t *p = sh_find(&s, "infer.poll", NULL);
	assert_non_null(p);
	assert_string_equal(json_string_value(json_object_get(p, "value")), "0x1");
	sh_free(&s);
}

/* With no input, data-ready stays clear: the firmware waits instead of reading garbage. */
static void test_uart_waits_without_input(void **state)
{
	struct shell s;
	uc_err er = run_snippet(&s, UART_F1, "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL, 200000);
	assert_int_equal(er, UC_ERR_OK); /* stopped by the instruction limit */
	assert_string_equal(s.out, "Hello\n");
	/* Input arriving later is read. */
	sh_input(&s, "z\n");
	uint32_t pc = reg(&s, UC_ARM_REG_PC);
	er = sh_run(&s, pc, 0, 200000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_string_equal(s.out, "Hello\nz\n");
	sh_free(&s);
}

/* Same firmware, same input: same decisions and output, run after run. */
static void strip_latency(json_t *events)
{
	size_t i;
	json_t *e;
	json_array_foreach(events, i, e)
	{
		json_object_del(json_object_get(e, "data"), "latency_ns");
		json_object_del(json_object_get(e, "data"),
		                "map_ns"); /* host time, not a decision */
	}
}

static void test_determinism(void **state)
{
	struct shell a, b;
	run_snippet(&a, UART_F1, "cortex-m3", UC_CPU_ARM_CORTEX_M3, "hi\n", 200000);
	run_snippet(&b, UART_F1, "cortex-m3", UC_CPU_ARM_CORTEX_M3, "hi\n", 200000);
	strip_latency(a.events);
	strip_latency(b.events);
	assert_true(json_equal(a.events, b.events));
	assert_string_equal(a.out, b.out);
	assert_int_equal(a.insns, b.insns);
	assert_int_equal(a.blocks, b.blocks);
	sh_free(&a);
	sh_free(&b);
}

/* Export the device map, import it into a fresh machine: no inference needed at all. */
static void test_export_import(void **state)
{
	struct shell a, b;
	run_snippet(&a, UART_F1, "cortex-m3", UC_CPU_ARM_CORTEX_M3, "ab\n", 200000);
	json_t *map = ms_infer_export(a.inf);
	char *text = json_dumps(map, JSON_INDENT(1));
	assert_non_null(strstr(text, "machineserver-device-map"));

	size_t len = 0;
	uint8_t *bin = sh_asm(UART_F1, "cortex-m3", &len);
	struct ms_err e;
	struct ms_infer_opts o = {0};
	char path[] = "/tmp/ms-infer-map-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	o.models_path = path;
	assert_int_equal(sh_init(&b, UC_CPU_ARM_CORTEX_M3, bin, len, 0, &o, &e), 0);
	sh_input(&b, "ab\n");
	uc_err er = sh_run(&b, 0, 0x20008000, 200000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_string_equal(b.out, "Hello\nab\n");
	assert_int_equal(sh_count(&b, "infer.region"), 0);
	assert_int_equal(sh_count(&b, "infer.poll"), 0);
	assert_int_equal(sh_count(&b, "infer.register"), 0);
	unlink(path);
	free(text);
	free(bin);
	json_decref(map);
	sh_free(&a);
	sh_free(&b);
}

static int import_text(struct shell *s, const char *text, struct ms_err *e)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
	if (!j)
		return -999;
	int rc = ms_infer_import(s->inf, j, e);
	json_decref(j);
	return rc;
}

static void test_import_corrupt(void **state)
{
	struct shell s;
	run_snippet(&s, "bkpt\n", "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL, 100);
	struct ms_err e;
	static const char *const bad[] = {
	    "[]",
	    "{\"format\":\"other\",\"version\":1,\"peripherals\":[]}",
	    "{\"format\":\"machineserver-device-map\",\"version\":2,\"peripherals\":[]}",
	    "{\"format\":\"machineserver-device-map\",\"version\":1,\"peripherals\":{}}",
	    "{\"format\":\"machineserver-device-map\",\"version\":1,\"peripherals\":[{\"base\":"
	    "\"0x40000123\",\"registers\":[]}]}",
	    "{\"format\":\"machineserver-device-map\",\"version\":1,\"peripherals\":[{\"base\":"
	    "\"0x20000000\",\"registers\":[]}]}",
	    "{\"format\":\"machineserver-device-map\",\"version\":1,\"peripherals\":[{\"base\":"
	    "\"0x40000000\",\"registers\":[{\"offset\":4096}]}]}",
	    "{\"format\":\"machineserver-device-map\",\"version\":1,\"peripherals\":[{\"base\":"
	    "\"0x40000000\",\"registers\":[{\"offset\":4,\"model\":\"laser\"}]}]}",
	    "{\"format\":\"machineserver-device-map\",\"version\":1,\"peripherals\":[{\"base\":"
	    "\"0x40000000\",\"registers\":[{\"offset\":4,\"reset\":\"0x1ffffffff\"}]}]}",
	    "{\"format\":\"machineserver-device-map\",\"version\":1,\"peripherals\":[{\"base\":"
	    "\"0x40000000\",\"registers\":[{\"offset\":4,\"polls\":[{\"pc\":1}]}]}]}",
	    "{\"format\":\"machineserver-device-map\",\"version\":1,\"peripherals\":[{\"base\":"
	    "\"0x40000000\",\"irq\":9999,\"registers\":[]}]}",
	    "{\"format\":\"machineserver-device-map\",\"version\":1,\"peripherals\":[{\"base\":"
	    "\"0x40000000\",\"registers\":[]},{\"base\":\"0x40000000\",\"registers\":[]}]}",
	    "{\"format\":\"machineserver-device-map\",\"version\":1,\"peripherals\":[{\"base\":"
	    "\"0x40000000\",\"registers\":[{\"offset\":-4}]}]}",
	    /* Interrupt lines per 1 KiB block: an array of {offset, irq}, both in range. */
	    "{\"format\":\"machineserver-device-map\",\"version\":1,\"peripherals\":[{\"base\":"
	    "\"0x40013000\",\"irqs\":{},\"registers\":[]}]}",
	    "{\"format\":\"machineserver-device-map\",\"version\":1,\"peripherals\":[{\"base\":"
	    "\"0x40013000\",\"irqs\":[{\"offset\":\"0x804\",\"irq\":37}],\"registers\":[]}]}",
	    "{\"format\":\"machineserver-device-map\",\"version\":1,\"peripherals\":[{\"base\":"
	    "\"0x40013000\",\"irqs\":[{\"offset\":4096,\"irq\":37}],\"registers\":[]}]}",
	    "{\"format\":\"machineserver-device-map\",\"version\":1,\"peripherals\":[{\"base\":"
	    "\"0x40013000\",\"irqs\":[{\"offset\":\"0x800\",\"irq\":256}],\"registers\":[]}]}",
	    "{\"format\":\"machineserver-device-map\",\"version\":1,\"peripherals\":[{\"base\":"
	    "\"0x40013000\",\"irqs\":[{\"offset\":\"0x800\"}],\"registers\":[]}]}",
	    "{\"format\":\"machineserver-device-map\",\"version\":1,\"peripherals\":[{\"base\":"
	    "\"0x40013000\",\"irqs\":[{\"offset\":\"0x800\",\"irq\":\"37\"}],\"registers\":[]}]}",
	    "{\"format\":\"machineserver-device-map\",\"version\":1,\"peripherals\":[{\"base\":"
	    "\"0x40013000\",\"irqs\":[7],\"registers\":[]}]}",
	    "{\"format\":\"machineserver-device-map\",\"version\":1,\"peripherals\":[{\"base\":"
	    "\"0x40000000\",\"registers\":[{\"offset\":0,\"idle_mask\":\"0x1ffffffff\"}]}]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms_err_clear(&e);
		int rc = import_text(&s, bad[i], &e);
		assert_true(rc < 0);
		assert_int_equal(e.status, e.status == 413 ? 413 : 400);
		assert_string_equal(e.code, "bad_models");
	}
	/* Nothing was created by the refused maps. */
	json_t *ps = ms_infer_peripherals(s.inf);
	assert_int_equal(json_array_size(ps), 0);
	json_decref(ps);

	/* A truncated file and a file that is not JSON fail at creation with 400. */
	char path[] = "/tmp/ms-infer-bad-XXXXXX";
	int fd = mkstemp(path);
	const char *trunc =
	    "{\"format\":\"machineserver-device-map\",\"version\":1,\"peripherals\":[{\"base\":";
	assert_int_equal(write(fd, trunc, strlen(trunc)), (ssize_t)strlen(trunc));
	close(fd);
	struct ms_infer_opts o = {.models_path = path};
	struct ms_infer_host h = {0};
	ms_err_clear(&e);
	assert_null(ms_infer_new(s.uc, &h, &o, &e));
	assert_int_equal(e.status, 400);
	assert_string_equal(e.code, "bad_models");
	unlink(path);
	o.models_path = "/nonexistent/map.json";
	assert_null(ms_infer_new(s.uc, &h, &o, &e));
	assert_int_equal(e.status, 400);
	sh_free(&s);
}

static void test_patch(void **state)
{
	struct shell s;
	uc_err er = run_snippet(&s,
	                        "ldr r1, =0x40020000\n"
	                        "ldr r2, =0x1234\n"
	                        "str r2, [r1, #0x10]\n"
	                        "ldr r3, [r1, #0x10]\n"
	                        "bkpt\n",
	                        "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL, 1000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_int_equal(reg(&s, UC_ARM_REG_R3), 0x1234); /* a register remembers its write */
	struct ms_err e;
	json_t *p = json_pack("{s:s,s:s,s:s,s:s}", "addr", "0x40020010", "model", "const", "value",
	                      "0xabcd", "name", "ID");
	assert_int_equal(ms_infer_patch(s.inf, p, &e), 0);
	json_decref(p);
	/* Run the read again: the constant wins over the write. */
	uint32_t pc = 4 + 2 + 2; /* after the literal load and the str? re-run from the start */
	(void)pc;
	er = sh_run(&s, 0, 0x20008000, 1000);
	assert_int_equal(reg(&s, UC_ARM_REG_R3), 0xabcd);
	p = json_pack("{s:s,s:s}", "addr", "0x40020100", "model", "const");
	assert_int_equal(ms_infer_patch(s.inf, p, &e), MS_ENOTFOUND);
	assert_int_equal(e.status, 404);
	json_decref(p);
	p = json_pack("{s:s,s:s}", "addr", "0x40020010", "model", "magic");
	assert_true(ms_infer_patch(s.inf, p, &e) < 0);
	assert_int_equal(e.status, 400);
	json_decref(p);
	p = json_pack("{s:s,s:i}", "addr", "0x40020010", "value", -5);
	assert_true(ms_infer_patch(s.inf, p, &e) < 0);
	assert_int_equal(e.status, 400);
	json_decref(p);
	p = json_pack("{s:i}", "model", 1);
	assert_true(ms_infer_patch(s.inf, p, &e) < 0);
	json_decref(p);
	sh_free(&s);
}

static void test_state_save_load(void **state)
{
	struct shell s;
	uc_err er = run_snippet(&s,
	                        "ldr r1, =0x40020000\n"
	                        "ldr r2, =0x55\n"
	                        "str r2, [r1, #0x20]\n"
	                        "bkpt\n"
	                        "ldr r2, =0x66\n"
	                        "str r2, [r1, #0x20]\n"
	                        "ldr r3, [r1, #0x20]\n"
	                        "bkpt\n",
	                        "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL, 1000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	json_t *snap = ms_infer_state_save(s.inf);
	uint32_t pc = reg(&s, UC_ARM_REG_PC) + 2;
	er = sh_run(&s, pc, 0, 1000);
	assert_int_equal(reg(&s, UC_ARM_REG_R3), 0x66);
	struct ms_err e;
	assert_int_equal(ms_infer_state_load(s.inf, snap, &e), 0);
	json_t *ps = ms_infer_peripherals(s.inf);
	json_t *r0 = json_array_get(json_object_get(json_array_get(ps, 0), "registers"), 0);
	assert_string_equal(json_string_value(json_object_get(r0, "value")), "0x55");
	json_decref(ps);
	json_t *bad = json_pack("{s:i}", "version", 7);
	assert_true(ms_infer_state_load(s.inf, bad, &e) < 0);
	assert_int_equal(e.status, 400);
	json_decref(bad);
	json_decref(snap);
	sh_free(&s);
}

static void test_delay_loop(void **state)
{
	struct shell s;
	uc_err er = run_snippet(&s,
	                        "ldr r3, =3000000\n"
	                        "1: subs r3, #1\n"
	                        "bne 1b\n"
	                        "movs r0, #5\n"
	                        "bkpt\n",
	                        "cortex-m0", UC_CPU_ARM_CORTEX_M0, NULL, 10000000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_int_equal(reg(&s, UC_ARM_REG_R0), 5);
	assert_int_equal(reg(&s, UC_ARM_REG_R3), 0);
	/* Skipped, but accounted: virtual time still passes for the whole delay. */
	assert_true(s.skipped > 2900000 * 2);
	assert_true(s.blocks < 100);
	assert_non_null(sh_find(&s, "infer.delay", "delay-loop"));
	sh_free(&s);
}

/* A loop with a side effect (it writes memory) is not a delay loop. */
static void test_not_a_delay_loop(void **state)
{
	struct shell s;
	uc_err er = run_snippet(&s,
	                        "ldr r3, =2000\n"
	                        "ldr r1, =0x20000100\n"
	                        "1: str r3, [r1]\n"
	                        "subs r3, #1\n"
	                        "bne 1b\n"
	                        "bkpt\n",
	                        "cortex-m0", UC_CPU_ARM_CORTEX_M0, NULL, 100000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_int_equal(s.skipped, 0);
	assert_null(sh_find(&s, "infer.delay", NULL));
	sh_free(&s);
}

/*
 * Interrupts: an nRF-style UART (TXD +0x51c, EVENTS_TXDRDY +0x11c, RXD
 * +0x518, EVENTS_RXDRDY +0x108, INTENSET +0x304) whose handler reads input
 * with no polling loop at all. The vector table holds IRQ 2.
 */
static const char *NRF_IRQ = ".word 0x20008000\n"
                             ".word reset + 1\n"
                             ".rept 14\n.word 0\n.endr\n"
                             ".word 0, 0, handler + 1\n" /* IRQ 0, 1, 2 */
                             ".rept 29\n.word 0\n.endr\n"
                             "reset: ldr r4, =0x40002000\n"
                             "adr r5, msg\n"
                             "1: ldrb r0, [r5]\n"
                             "adds r5, #1\n"
                             "cmp r0, #0\n"
                             "beq 2f\n"
                             "bl putc\n"
                             "b 1b\n"
                             "2: ldr r1, =0x304\n"
                             "movs r0, #4\n"
                             "str r0, [r4, r1]\n" /* INTENSET = RXDRDY */
                             "ldr r1, =0x20000000\n"
                             "movs r0, #0\n"
                             "str r0, [r1]\n"
                             "ldr r2, =0xE000E100\n"
                             "movs r0, #4\n"
                             "ldr r3, =0x20000010\n"
                             "ldr r7, [r3]\n" /* r7 = 0 unless the test enables the NVIC */
                             "cmp r7, #0\n"
                             "beq 3f\n"
                             "str r0, [r2]\n" /* NVIC ISER: IRQ 2 */
                             "3: ldr r0, [r1]\n"
                             "cmp r0, #10\n"
                             "bne 3b\n"
                             "bkpt\n"
                             "putc: ldr r2, =0x51c\n"
                             "str r0, [r4, r2]\n"
                             "ldr r2, =0x11c\n"
                             "4: ldr r3, [r4, r2]\n"
                             "cmp r3, #0\n"
                             "beq 4b\n"
                             "movs r3, #0\n"
                             "str r3, [r4, r2]\n"
                             "bx lr\n"
                             "handler: ldr r4, =0x40002000\n"
                             "ldr r2, =0x108\n"
                             "ldr r3, [r4, r2]\n"
                             "cmp r3, #0\n"
                             "beq 5f\n"
                             "movs r3, #0\n"
                             "str r3, [r4, r2]\n"
                             "ldr r2, =0x518\n"
                             "ldr r0, [r4, r2]\n"
                             "ldr r1, =0x20000000\n"
                             "str r0, [r1]\n"
                             "push {r4, lr}\n"
                             "bl putc\n"
                             "pop {r4, pc}\n"
                             "5: bx lr\n"
                             ".align 2\n"
                             "msg: .asciz \"ready\\r\\n\"\n"
                             ".ltorg\n";

static void nrf_machine(struct shell *s, bool nvic)
{
	sh_load(s, NRF_IRQ, "cortex-m0", UC_CPU_ARM_CORTEX_M0, NULL);
	uint32_t flag = nvic;
	uc_mem_write(s->uc, 0x20000010, &flag, 4);
}

static void test_irq_event_driven(void **state)
{
	struct shell s;
	nrf_machine(&s, true);
	sh_input(&s, "ok\n");
	uc_err er = sh_boot(&s, 2000000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_string_equal(s.out, "ready\r\nok\n");
	assert_true(s.irqs_taken >= 3);
	json_t *irq = sh_find(&s, "infer.irq", "irq-line");
	assert_non_null(irq);
	assert_int_equal(json_integer_value(json_object_get(irq, "irq")), 2);
	assert_string_equal(json_string_value(json_object_get(irq, "base")), "0x40002000");
	sh_free(&s);
}

/* Not enabled in the NVIC: never raised, however much input waits. */
static void test_irq_needs_nvic(void **state)
{
	struct shell s;
	nrf_machine(&s, false);
	sh_input(&s, "ok\n");
	uc_err er = sh_boot(&s, 300000);
	assert_int_equal(er, UC_ERR_OK);
	assert_int_equal(s.irqs_taken, 0);
	assert_int_equal(s.ispr, 0);
	assert_string_equal(s.out, "ready\r\n");
	sh_free(&s);
}

/* No input: enabled, but the event has not happened, so nothing is raised. */
static void test_irq_needs_event(void **state)
{
	struct shell s;
	nrf_machine(&s, true);
	uc_err er = sh_boot(&s, 300000);
	assert_int_equal(er, UC_ERR_OK);
	assert_int_equal(s.irqs_taken, 0);
	assert_string_equal(s.out, "ready\r\n");
	sh_free(&s);
}

/*
 * Interrupt-driven transmit with no polled output at all (STM32 USART2,
 * IRQ 38): putc queues a byte and sets CR1.TXEIE; the handler writes DR
 * from the queue while SR.TXE and CR1.TXEIE are set, and clears TXEIE when
 * the queue is empty. The word at 0x20000010 says whether the firmware
 * sets TXEIE at all (the peripheral's enable bit).
 */
static const char *TXIRQ = ".word 0x20008000\n"
                           ".word reset + 1\n"
                           ".rept 14\n.word 0\n.endr\n"
                           ".rept 38\n.word 0\n.endr\n"
                           ".word isr + 1\n" /* IRQ 38 */
                           ".rept 9\n.word 0\n.endr\n"
                           "reset: ldr r4, =0x40004400\n"
                           "ldr r0, =0x202c\n" /* UE | TE | RE | RXNEIE */
                           "str r0, [r4, #0x0c]\n"
                           "ldr r2, =0xE000E104\n"
                           "movs r0, #0x40\n"
                           "str r0, [r2]\n" /* ISER1 bit 6: IRQ 38 */
                           "adr r5, msg\n"
                           "1: ldrb r0, [r5], #1\n"
                           "cbz r0, 2f\n"
                           "bl putc\n"
                           "b 1b\n"
                           "2: ldr r6, =0x20000000\n" /* r6: head, tail at +4 */
                           "3: ldr r0, [r6]\n"
                           "ldr r1, [r6, #4]\n"
                           "cmp r0, r1\n"
                           "bne 3b\n"
                           "bkpt\n"
                           "putc: ldr r6, =0x20000000\n"
                           "ldr r1, [r6]\n"
                           "add r2, r6, #0x20\n"
                           "and r3, r1, #63\n"
                           "strb r0, [r2, r3]\n"
                           "adds r1, #1\n"
                           "str r1, [r6]\n"
                           "ldr r3, =0x20000010\n"
                           "ldr r3, [r3]\n"
                           "cbz r3, 4f\n"
                           "ldr r1, [r4, #0x0c]\n"
                           "orr r1, r1, #0x80\n"
                           "str r1, [r4, #0x0c]\n" /* CR1 |= TXEIE */
                           "4: bx lr\n"
                           "isr: ldr r3, =0x40004400\n"
                           "ldr r0, [r3]\n" /* SR */
                           "tst r0, #0x80\n"
                           "beq 6f\n"
                           "ldr r1, [r3, #0x0c]\n"
                           "tst r1, #0x80\n"
                           "beq 6f\n"
                           "ldr r2, =0x20000000\n"
                           "ldr r0, [r2]\n"
                           "ldr r1, [r2, #4]\n"
                           "cmp r0, r1\n"
                           "beq 5f\n"
                           "add r0, r2, #0x20\n"
                           "and r12, r1, #63\n"
                           "ldrb r0, [r0, r12]\n"
                           "str r0, [r3, #4]\n" /* DR */
                           "adds r1, #1\n"
                           "str r1, [r2, #4]\n"
                           "bx lr\n"
                           "5: ldr r1, [r3, #0x0c]\n"
                           "bic r1, r1, #0x80\n"
                           "str r1, [r3, #0x0c]\n" /* queue empty: TXEIE off */
                           "6: bx lr\n"
                           ".align 2\n"
                           "msg: .asciz \"sent by the handler\\r\\n\"\n"
                           ".ltorg\n";

static void txirq_machine(struct shell *s, bool txeie)
{
	sh_load(s, TXIRQ, "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL);
	uint32_t flag = txeie;
	uc_mem_write(s->uc, 0x20000010, &flag, 4);
}

static void test_tx_interrupt_only(void **state)
{
	struct shell s;
	txirq_machine(&s, true);
	uc_err er = sh_boot(&s, 2000000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_string_equal(s.out, "sent by the handler\r\n");
	/* One interrupt per byte, plus the one that finds the queue empty. */
	assert_true(s.irqs_taken >= 21 && s.irqs_taken <= 23);
	json_t *t = sh_find(&s, "infer.irq", "tx-irq");
	assert_non_null(t);
	assert_string_equal(json_string_value(json_object_get(t, "enable")), "0x4000440c");
	assert_string_equal(json_string_value(json_object_get(t, "enable_bits")), "0x80");
	assert_string_equal(json_string_value(json_object_get(t, "data")), "0x40004404");
	sh_free(&s);
}

/* TXEIE never set: the handler would not send, so nothing is raised and nothing printed. */
static void test_tx_interrupt_needs_enable(void **state)
{
	struct shell s;
	txirq_machine(&s, false);
	uc_err er = sh_boot(&s, 300000);
	assert_int_equal(er, UC_ERR_OK); /* waits for ever for the queue to drain */
	assert_int_equal(s.irqs_taken, 0);
	assert_int_equal(s.ispr, 0);
	assert_int_equal(s.nout, 0);
	assert_null(sh_find(&s, "infer.irq", "tx-irq"));
	sh_free(&s);
}

/* The same run twice: the same decisions in the same order. */
static void test_tx_interrupt_deterministic(void **state)
{
	char *dump[2];
	for (int i = 0; i < 2; i++) {
		struct shell s;
		txirq_machine(&s, true);
		sh_boot(&s, 2000000);
		size_t k;
		json_t *ev;
		json_array_foreach(s.events, k, ev)
		{
			json_object_del(json_object_get(ev, "data"), "latency_ns");
			json_object_del(json_object_get(ev, "data"), "map_ns");
		}
		dump[i] = json_dumps(s.events, JSON_COMPACT);
		sh_free(&s);
	}
	assert_string_equal(dump[0], dump[1]);
	free(dump[0]);
	free(dump[1]);
}

/*
 * The Nordic way (nRF52 UART0, IRQ 2): INTENSET.TXDRDY, the first byte
 * written to TXD by the thread, every next one by the handler after it
 * clears EVENTS_TXDRDY. TXDRDY is an event after a byte, not a level: the
 * enable alone must not interrupt, or the handler would send before the
 * thread set up its buffer (each byte must appear once).
 */
static const char *NRF_TXIRQ = ".word 0x20008000\n"
                               ".word reset + 1\n"
                               ".rept 14\n.word 0\n.endr\n"
                               ".word 0, 0, isr + 1\n" /* IRQ 2 */
                               ".rept 29\n.word 0\n.endr\n"
                               "reset: ldr r4, =0x40002000\n"
                               "ldr r1, =0x500\n"
                               "movs r0, #4\n"
                               "str r0, [r4, r1]\n" /* ENABLE */
                               "movs r0, #1\n"
                               "str r0, [r4, #8]\n" /* TASKS_STARTTX */
                               "ldr r1, =0x304\n"
                               "movs r0, #0x80\n"
                               "str r0, [r4, r1]\n" /* INTENSET TXDRDY */
                               "ldr r2, =0xE000E100\n"
                               "movs r0, #4\n"
                               "str r0, [r2]\n" /* ISER0: IRQ 2 */
                               "movs r0, #0\n"
                               "ldr r1, =0x20000000\n"
                               "2: subs r0, #1\n" /* a while before the text is ready */
                               "ldr r3, =2000\n"
                               "cmn r0, r3\n"
                               "bne 2b\n"
                               "ldr r6, =0x20000000\n"
                               "movs r0, #1\n"
                               "str r0, [r6]\n" /* next index */
                               "movs r0, #0\n"
                               "str r0, [r6, #4]\n" /* done */
                               "adr r5, msg\n"
                               "str r5, [r6, #8]\n"
                               "ldrb r0, [r5]\n"
                               "ldr r1, =0x51c\n"
                               "str r0, [r4, r1]\n" /* TXD: the first byte */
                               "1: ldr r0, [r6, #4]\n"
                               "cmp r0, #0\n"
                               "beq 1b\n"
                               "bkpt\n"
                               "isr: ldr r4, =0x40002000\n"
                               "ldr r1, =0x11c\n"
                               "ldr r2, [r4, r1]\n" /* EVENTS_TXDRDY */
                               "cmp r2, #0\n"
                               "beq 9f\n"
                               "movs r2, #0\n"
                               "str r2, [r4, r1]\n"
                               "ldr r3, =0x20000000\n"
                               "ldr r0, [r3]\n"
                               "ldr r1, [r3, #8]\n"
                               "ldrb r2, [r1, r0]\n"
                               "cmp r2, #0\n"
                               "beq 8f\n"
                               "ldr r1, =0x51c\n"
                               "str r2, [r4, r1]\n"
                               "adds r0, #1\n"
                               "str r0, [r3]\n"
                               "bx lr\n"
                               "8: movs r0, #1\n"
                               "str r0, [r3, #4]\n"
                               "9: bx lr\n"
                               ".align 2\n"
                               "msg: .asciz \"nordic irq tx\\r\\n\"\n"
                               ".ltorg\n";

static void test_tx_interrupt_event_after_byte(void **state)
{
	struct shell s;
	sh_load(&s, NRF_TXIRQ, "cortex-m0", UC_CPU_ARM_CORTEX_M0, NULL);
	uc_err er = sh_boot(&s, 2000000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_string_equal(s.out, "nordic irq tx\r\n");
	json_t *t = sh_find(&s, "infer.irq", "tx-irq");
	assert_non_null(t);
	assert_string_equal(json_string_value(json_object_get(t, "data")), "0x4000251c");
	sh_free(&s);
}

/* STM32F1 TIM2 (IRQ 28): PSC, ARR, DIER.UIE, CR1.CEN; the handler counts update events. */
static const char *TIM2_IRQ = ".word 0x20008000\n"
                              ".word reset + 1\n"
                              ".rept 14\n.word 0\n.endr\n"
                              ".rept 28\n.word 0\n.endr\n"
                              ".word handler + 1\n" /* IRQ 28 */
                              ".rept 3\n.word 0\n.endr\n"
                              "reset: ldr r4, =0x40000000\n"
                              "ldr r5, =0x20000000\n"
                              "movs r0, #0\n"
                              "str r0, [r5]\n"
                              "movs r0, #15\n"
                              "str r0, [r4, #0x28]\n" /* PSC */
                              "ldr r0, =999\n"
                              "str r0, [r4, #0x2c]\n" /* ARR */
                              "movs r0, #1\n"
                              "str r0, [r4, #0x0c]\n" /* DIER = UIE */
                              "str r0, [r4, #0x00]\n" /* CR1 = CEN */
                              "ldr r3, =0x20000010\n"
                              "ldr r7, [r3]\n"
                              "cmp r7, #0\n"
                              "beq 1f\n"
                              "ldr r2, =0xE000E100\n"
                              "ldr r0, =0x10000000\n"
                              "str r0, [r2]\n" /* ISER0 bit 28 */
                              "1: wfi\n"
                              "ldr r0, [r5]\n"
                              "cmp r0, #5\n"
                              "blo 1b\n"
                              "bkpt\n"
                              "handler: ldr r4, =0x40000000\n"
                              "ldr r1, [r4, #0x10]\n" /* SR */
                              "lsls r1, r1, #31\n"
                              "beq 2f\n"
                              "ldr r1, =0xfffffffe\n"
                              "str r1, [r4, #0x10]\n" /* clear UIF (rc_w0) */
                              "ldr r5, =0x20000000\n"
                              "ldr r0, [r5]\n"
                              "adds r0, #1\n"
                              "str r0, [r5]\n"
                              "2: bx lr\n"
                              ".ltorg\n";

static void timer_machine(struct shell *s, bool nvic, const char *svd)
{
	size_t len = 0;
	uint8_t *bin = sh_asm(TIM2_IRQ, "cortex-m3", &len);
	assert_non_null(bin);
	struct ms_err e;
	const char *paths[] = {svd};
	struct ms_infer_opts o = {
	    .mode = svd ? MS_INFER_SVD : MS_INFER_RULES, .svd_paths = paths, .n_svd = svd ? 1 : 0};
	assert_int_equal(sh_init(s, UC_CPU_ARM_CORTEX_M3, bin, len, 0, &o, &e), 0);
	free(bin);
	uint32_t flag = nvic;
	uc_mem_write(s->uc, 0x20000010, &flag, 4);
}

static void test_timer_irq(void **state)
{
	struct shell s;
	timer_machine(&s, true, NULL);
	uc_err er = sh_boot(&s, 3000000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	uint32_t ticks = 0;
	uc_mem_read(s.uc, 0x20000000, &ticks, 4);
	assert_int_equal(ticks, 5);
	json_t *t = sh_find(&s, "infer.timer", "timer");
	assert_non_null(t);
	assert_int_equal(json_integer_value(json_object_get(t, "irq")), 28);
	/* One interrupt per period: each one found its update flag set exactly once. */
	assert_true(s.irqs_taken >= 5 && s.irqs_taken <= 6);
	/* The timer period sets the next event (what WFI may jump to). */
	assert_true(ms_infer_next_event_ns(s.inf) != UINT64_MAX);
	sh_free(&s);
}

/*
 * Two peripherals in one 4 KiB page, each with its own interrupt (STM32F1
 * page 0x40013000: SPI1 at +0x000, IRQ 35; USART1 at +0x800, IRQ 37). The
 * SPI1 line is enabled first. Input must raise USART1's line, never SPI1's.
 */
static const char *SHARED_PAGE = ".word 0x20008000\n"
                                 ".word reset + 1\n"
                                 ".rept 14\n.word 0\n.endr\n"
                                 ".rept 35\n.word 0\n.endr\n"
                                 ".word spi_isr + 1\n" /* IRQ 35 */
                                 ".word 0\n"
                                 ".word uart_isr + 1\n" /* IRQ 37 */
                                 ".rept 10\n.word 0\n.endr\n"
                                 "reset: ldr r4, =0x40013800\n"
                                 "ldr r6, =0x20000000\n"
                                 "movs r0, #0\n"
                                 "str r0, [r6]\n" /* USART bytes received */
                                 "str r0, [r6, #0x20]\n" /* SPI interrupts */
                                 "ldr r1, =0x40013000\n"
                                 "movs r0, #0x44\n"
                                 "str r0, [r1]\n" /* SPI1 CR1: SPE | MSTR */
                                 "movs r0, #0x40\n"
                                 "str r0, [r1, #4]\n" /* SPI1 CR2: RXNEIE */
                                 "ldr r2, =0xE000E104\n"
                                 "movs r0, #0x08\n"
                                 "str r0, [r2]\n" /* ISER1 bit 3: IRQ 35 */
                                 "adr r5, msg\n"
                                 "1: ldrb r0, [r5], #1\n"
                                 "cbz r0, 2f\n"
                                 "bl putc\n"
                                 "b 1b\n"
                                 "2: ldr r0, =0x202c\n"
                                 "str r0, [r4, #0x0c]\n" /* USART1 CR1: UE|TE|RE|RXNEIE */
                                 "movs r0, #0x20\n"
                                 "str r0, [r2]\n" /* ISER1 bit 5: IRQ 37 */
                                 "3: ldr r0, [r6]\n"
                                 "cmp r0, #3\n"
                                 "blo 3b\n"
                                 "ldrb r0, [r6, #4]\n"
                                 "bl putc\n"
                                 "ldrb r0, [r6, #5]\n"
                                 "bl putc\n"
                                 "ldrb r0, [r6, #6]\n"
                                 "bl putc\n"
                                 "bkpt\n"
                                 "putc: ldr r1, [r4]\n"
                                 "tst r1, #0x80\n"
                                 "beq putc\n"
                                 "str r0, [r4, #4]\n"
                                 "bx lr\n"
                                 "uart_isr: ldr r3, =0x40013800\n"
                                 "ldr r0, [r3]\n" /* SR */
                                 "tst r0, #0x20\n"
                                 "beq 4f\n"
                                 "ldr r1, [r3, #4]\n" /* DR */
                                 "ldr r2, =0x20000000\n"
                                 "ldr r0, [r2]\n"
                                 "add r12, r2, #4\n"
                                 "strb r1, [r12, r0]\n"
                                 "adds r0, #1\n"
                                 "str r0, [r2]\n"
                                 "4: bx lr\n"
                                 "spi_isr: ldr r3, =0x40013000\n"
                                 "ldr r0, [r3, #8]\n" /* SPI1 SR */
                                 "ldr r2, =0x20000000\n"
                                 "ldr r1, [r2, #0x20]\n"
                                 "adds r1, #1\n"
                                 "str r1, [r2, #0x20]\n"
                                 "tst r0, #1\n"
                                 "beq 5f\n"
                                 "ldr r0, [r3, #0x0c]\n" /* SPI1 DR */
                                 "5: bx lr\n"
                                 ".align 2\n"
                                 "msg: .asciz \"ready\\r\\n\"\n"
                                 ".ltorg\n";

static void test_irq_per_peripheral_in_a_page(void **state)
{
	struct shell s;
	sh_load(&s, SHARED_PAGE, "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL);
	sh_input(&s, "abc");
	uc_err er = sh_boot(&s, 2000000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_string_equal(s.out, "ready\r\nabc");
	uint32_t spi_irqs = 1;
	uc_mem_read(s.uc, 0x20000020, &spi_irqs, 4);
	assert_int_equal(spi_irqs, 0);
	/* Both lines linked to their own block of the page. */
	int seen = 0;
	size_t i;
	json_t *ev;
	json_array_foreach(s.events, i, ev)
	{
		json_t *d = json_object_get(ev, "data");
		if (strcmp(json_string_value(json_object_get(ev, "type")), "infer.irq"))
			continue;
		int irq = (int)json_integer_value(json_object_get(d, "irq"));
		const char *unit = json_string_value(json_object_get(d, "unit"));
		if (irq == 35 && unit && !strcmp(unit, "0x40013000"))
			seen |= 1;
		if (irq == 37 && unit && !strcmp(unit, "0x40013800"))
			seen |= 2;
	}
	assert_int_equal(seen, 3);
	/* The device map keeps both lines, and a second run from it needs no irq decision. */
	json_t *map = ms_infer_export(s.inf);
	json_t *p0 = json_array_get(json_object_get(map, "peripherals"), 0);
	json_t *irqs = NULL;
	json_array_foreach(json_object_get(map, "peripherals"), i,
	                   p0) if (!strcmp(json_string_value(json_object_get(p0, "base")),
	                                   "0x40013000")) irqs = json_object_get(p0, "irqs");
	assert_non_null(irqs);
	assert_int_equal(json_array_size(irqs), 2);
	sh_free(&s);
	char path[] = "/tmp/ms-infer-units-XXXXXX";
	int fd = mkstemp(path);
	close(fd);
	assert_int_equal(json_dump_file(map, path, 0), 0);
	json_decref(map);
	struct ms_infer_opts o = {.models_path = path};
	sh_load(&s, SHARED_PAGE, "cortex-m3", UC_CPU_ARM_CORTEX_M3, &o);
	unlink(path);
	sh_input(&s, "xyz");
	er = sh_boot(&s, 2000000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_string_equal(s.out, "ready\r\nxyz");
	assert_int_equal(sh_count(&s, "infer.irq"), 0);
	sh_free(&s);
}

/*
 * Rules-mode timer periods from what the firmware stored: an nRF TIMER
 * (PRESCALER = 4 at +0x510, CC[0] = 1000 at +0x540, INTENSET = 1 << 16)
 * is 1000 << 4 CPU cycles, not the enable mask's 65536.
 */
static const char *NRF_TIMER = ".word 0x20008000\n"
                               ".word reset + 1\n"
                               ".rept 14\n.word 0\n.endr\n"
                               ".rept 8\n.word 0\n.endr\n"
                               ".word handler + 1\n" /* IRQ 8 */
                               ".rept 8\n.word 0\n.endr\n"
                               "reset: ldr r4, =0x40008000\n"
                               "ldr r5, =0x20000000\n"
                               "movs r0, #0\n"
                               "str r0, [r5]\n"
                               "ldr r1, =0x508\n"
                               "movs r0, #3\n"
                               "str r0, [r4, r1]\n" /* BITMODE 32 */
                               "ldr r1, =0x510\n"
                               "movs r0, #4\n"
                               "str r0, [r4, r1]\n" /* PRESCALER */
                               "ldr r1, =0x540\n"
                               "ldr r0, =1000\n"
                               "str r0, [r4, r1]\n" /* CC[0] */
                               "ldr r1, =0x304\n"
                               "ldr r0, =0x10000\n"
                               "str r0, [r4, r1]\n" /* INTENSET COMPARE0 */
                               "ldr r2, =0xE000E100\n"
                               "movs r0, #0x80\n"
                               "lsls r0, r0, #1\n"
                               "str r0, [r2]\n" /* ISER0 bit 8 */
                               "movs r0, #1\n"
                               "str r0, [r4]\n" /* TASKS_START */
                               "1: wfi\n"
                               "ldr r0, [r5]\n"
                               "cmp r0, #3\n"
                               "blo 1b\n"
                               "bkpt\n"
                               "handler: ldr r4, =0x40008000\n"
                               "ldr r1, =0x140\n"
                               "ldr r2, [r4, r1]\n" /* EVENTS_COMPARE[0] */
                               "cmp r2, #0\n"
                               "beq 2f\n"
                               "movs r2, #0\n"
                               "str r2, [r4, r1]\n"
                               "ldr r5, =0x20000000\n"
                               "ldr r0, [r5]\n"
                               "adds r0, #1\n"
                               "str r0, [r5]\n"
                               "2: bx lr\n"
                               ".ltorg\n";

static void test_timer_rules_period(void **state)
{
	struct shell s;
	sh_load(&s, NRF_TIMER, "cortex-m0", UC_CPU_ARM_CORTEX_M0, NULL);
	uc_err er = sh_boot(&s, 3000000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	json_t *t = sh_find(&s, "infer.timer", "timer");
	assert_non_null(t);
	assert_int_equal(json_integer_value(json_object_get(t, "cycles")), 16000);
	assert_int_equal(json_integer_value(json_object_get(t, "period_ns")), 1000000);
	sh_free(&s);
	/* STM32 TIM2 (PSC = 15 beside ARR = 999): (15+1)*(999+1) cycles, as the SVD says. */
	timer_machine(&s, true, NULL);
	er = sh_boot(&s, 3000000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	t = sh_find(&s, "infer.timer", "timer");
	assert_non_null(t);
	assert_int_equal(json_integer_value(json_object_get(t, "period_ns")), 1000000);
	sh_free(&s);
}

static void test_timer_needs_nvic(void **state)
{
	struct shell s;
	timer_machine(&s, false, NULL);
	uc_err er = sh_boot(&s, 300000);
	assert_int_equal(er, UC_ERR_OK);
	assert_int_equal(s.irqs_taken, 0);
	assert_null(sh_find(&s, "infer.timer", NULL));
	assert_int_equal(ms_infer_next_event_ns(s.inf), UINT64_MAX);
	sh_free(&s);
}

static void test_timer_svd_period(void **state)
{
	const char *svd = "/work/shared/svd/STMicro/STM32F103xx.svd";
	if (access(svd, R_OK) != 0) {
		fprintf(stderr, "SKIP: %s absent\n", svd);
		skip();
	}
	struct shell s;
	timer_machine(&s, true, svd);
	uc_err er = sh_boot(&s, 3000000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	json_t *t = sh_find(&s, "infer.timer", "timer");
	assert_non_null(t);
	/* (PSC+1)*(ARR+1) = 16000 cycles at 16 MHz: 1 ms. */
	assert_int_equal(json_integer_value(json_object_get(t, "period_ns")), 1000000);
	sh_free(&s);
}

/* CCM RAM at 0x10000000 (written first) is memory; FICR (read first) is factory data. */
static void test_ficr_or_ram(void **state)
{
	struct shell s;
	uc_err er = run_snippet(&s,
	                        "ldr r1, =0x10000000\n"
	                        "ldr r2, =0xcafe\n"
	                        "str r2, [r1, #0x20]\n"
	                        "ldr r3, [r1, #0x20]\n"
	                        "ldr r4, [r1, #0x10]\n"
	                        "bkpt\n",
	                        "cortex-m4", UC_CPU_ARM_CORTEX_M4, NULL, 1000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_int_equal(reg(&s, UC_ARM_REG_R3), 0xcafe);
	assert_int_equal(reg(&s, UC_ARM_REG_R4), 0);
	assert_non_null(sh_find(&s, "infer.memory", "memory"));
	sh_free(&s);
	/* A vector table whose initial SP says 16 KiB of RAM, then the code at 8. */
	size_t len = 0;
	uint8_t *bin = sh_asm(".word 0x20004000\n"
	                      ".word 9\n"
	                      "ldr r1, =0x10000000\n"
	                      "ldr r4, [r1, #0x10]\n"
	                      "ldr r5, [r1, #0x14]\n"
	                      "bkpt\n",
	                      "cortex-m0", &len);
	struct ms_err e;
	struct ms_infer_opts o = {0};
	assert_int_equal(sh_init(&s, UC_CPU_ARM_CORTEX_M0, bin, len, 0, &o, &e), 0);
	free(bin);
	er = sh_boot(&s, 1000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_int_equal(reg(&s, UC_ARM_REG_R4), 1024); /* CODEPAGESIZE of an nRF51 (16 KiB RAM) */
	assert_int_equal(reg(&s, UC_ARM_REG_R5), 256);
	sh_free(&s);
}

/*
 * Tickless time keeping: the timer interrupt reads the counter and adds the
 * elapsed count; the main loop waits for 5000 counts. A constant counter
 * would never let time pass.
 */
static const char *TICKLESS = ".word 0x20008000\n"
                              ".word reset + 1\n"
                              ".rept 14\n.word 0\n.endr\n"
                              ".rept 28\n.word 0\n.endr\n"
                              ".word handler + 1\n"
                              ".rept 3\n.word 0\n.endr\n"
                              "reset: ldr r4, =0x40000000\n"
                              "ldr r5, =0x20000000\n"
                              "movs r0, #0\n"
                              "str r0, [r5]\n"
                              "str r0, [r5, #4]\n"
                              "ldr r0, =999\n"
                              "str r0, [r4, #0x2c]\n" /* ARR */
                              "movs r0, #1\n"
                              "str r0, [r4, #0x0c]\n" /* DIER */
                              "ldr r2, =0xE000E100\n"
                              "ldr r0, =0x10000000\n"
                              "str r0, [r2]\n"
                              "movs r0, #1\n"
                              "str r0, [r4]\n" /* CR1 = CEN */
                              "1: wfi\n"
                              "ldr r0, [r5]\n"
                              "ldr r1, =5000\n"
                              "cmp r0, r1\n"
                              "blo 1b\n"
                              "bkpt\n"
                              "handler: ldr r4, =0x40000000\n"
                              "ldr r1, [r4, #0x10]\n"
                              "lsls r1, r1, #31\n"
                              "beq 2f\n"
                              "ldr r1, =0xfffffffe\n"
                              "str r1, [r4, #0x10]\n"
                              "ldr r5, =0x20000000\n"
                              "ldr r2, [r4, #0x24]\n" /* CNT */
                              "ldr r1, [r5, #4]\n"
                              "subs r3, r2, r1\n"
                              "str r2, [r5, #4]\n"
                              "ldr r0, [r5]\n"
                              "add r0, r0, r3\n"
                              "str r0, [r5]\n"
                              "2: bx lr\n"
                              ".ltorg\n";

static void test_timer_counter(void **state)
{
	struct shell s;
	sh_load(&s, TICKLESS, "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL);
	uc_err er = sh_boot(&s, 2000000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	json_t *c = sh_find(&s, "infer.register", "counter");
	assert_non_null(c);
	assert_string_equal(json_string_value(json_object_get(c, "addr")), "0x40000024");
	sh_free(&s);
}

/* Current value of the inferred register at addr (from the peripherals view). */
static uint32_t model_value(struct shell *s, uint32_t addr)
{
	json_t *ps = ms_infer_peripherals(s->inf);
	size_t i, k;
	json_t *p, *r;
	uint32_t v = 0xdeadbeef;
	json_array_foreach(ps, i, p) json_array_foreach(json_object_get(p, "registers"), k, r)
	{
		if (strtoul(json_string_value(json_object_get(r, "addr")), NULL, 0) == addr)
			v = (uint32_t)strtoul(json_string_value(json_object_get(r, "value")), NULL,
			                      0);
	}
	json_decref(ps);
	return v;
}

/*
 * GPIO input with an external interrupt (STM32F1 EXTI0 = IRQ 6, PA0): the
 * firmware sleeps until the handler saw the pin high. Nothing happens
 * until the pin event is injected; then the interrupt runs once.
 */
static const char *EXTI = ".word 0x20008000\n"
                          ".word reset + 1\n"
                          ".rept 14\n.word 0\n.endr\n"
                          ".rept 6\n.word 0\n.endr\n"
                          ".word exti0 + 1\n" /* IRQ 6 */
                          ".rept 25\n.word 0\n.endr\n"
                          "reset: ldr r4, =0x40013800\n"
                          "adr r5, msg\n"
                          "bl puts\n"
                          "ldr r1, =0x40010400\n"
                          "movs r0, #1\n"
                          "str r0, [r1]\n" /* EXTI IMR: line 0 */
                          "str r0, [r1, #8]\n" /* EXTI RTSR: rising edge */
                          "ldr r2, =0xE000E100\n"
                          "movs r0, #0x40\n"
                          "str r0, [r2]\n" /* ISER0 bit 6 */
                          "ldr r6, =0x20000000\n"
                          "movs r0, #0\n"
                          "str r0, [r6]\n"
                          "1: wfi\n"
                          "ldr r0, [r6]\n"
                          "cmp r0, #0\n"
                          "beq 1b\n"
                          "adr r5, msg2\n"
                          "bl puts\n"
                          "bkpt\n"
                          "puts: push {lr}\n"
                          "2: ldrb r0, [r5], #1\n"
                          "cbz r0, 3f\n"
                          "bl putc\n"
                          "b 2b\n"
                          "3: pop {pc}\n"
                          "putc: ldr r1, [r4]\n"
                          "tst r1, #0x80\n"
                          "beq putc\n"
                          "str r0, [r4, #4]\n"
                          "bx lr\n"
                          "exti0: ldr r1, =0x40010400\n"
                          "ldr r0, [r1, #0x14]\n" /* PR */
                          "lsls r0, r0, #31\n"
                          "beq 4f\n"
                          "movs r0, #1\n"
                          "str r0, [r1, #0x14]\n" /* clear PR0 */
                          "ldr r1, =0x40010808\n"
                          "ldr r0, [r1]\n" /* GPIOA IDR */
                          "ands r0, r0, #1\n"
                          "ldr r1, =0x20000000\n"
                          "str r0, [r1]\n"
                          "4: bx lr\n"
                          ".align 2\n"
                          "msg: .asciz \"wait\\r\\n\"\n"
                          ".align 2\n"
                          "msg2: .asciz \"pressed\\r\\n\"\n"
                          ".ltorg\n";

static void test_gpio_external_interrupt(void **state)
{
	struct shell s;
	struct ms_err e;
	sh_load(&s, EXTI, "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL);
	uc_err er = sh_boot(&s, 300000);
	assert_int_equal(er, UC_ERR_OK); /* asleep: no event, no interrupt */
	assert_int_equal(s.irqs_taken, 0);
	assert_string_equal(s.out, "wait\r\n");
	/* Bad events are refused. */
	json_t *bad = json_pack("{s:s}", "kind", "gpio");
	assert_int_equal(ms_infer_inject(s.inf, bad, &e), MS_EBADINPUT);
	json_decref(bad);
	/* RAM is no input register; an untouched peripheral page gets its device. */
	bad = json_pack("{s:s,s:s,s:i,s:i}", "kind", "gpio", "addr", "0x20001000", "mask", 1,
	                "value", 1);
	assert_int_equal(ms_infer_inject(s.inf, bad, &e), MS_ENOTFOUND);
	json_decref(bad);
	bad = json_pack("{s:s,s:s,s:i,s:i}", "kind", "gpio", "addr", "0x10000000", "mask", 1,
	                "value", 1);
	assert_int_equal(ms_infer_inject(s.inf, bad, &e), MS_ENOTFOUND);
	json_decref(bad);
	json_t *early = json_pack("{s:s,s:s,s:i,s:i}", "kind", "gpio", "addr", "0x50000510", "mask",
	                          4, "value", 4);
	assert_int_equal(ms_infer_inject(s.inf, early, &e), 0);
	json_decref(early);
	assert_int_equal(model_value(&s, 0x50000510), 4);
	bad = json_pack("{s:s,s:s,s:i,s:i,s:i}", "kind", "gpio", "addr", "0x40010808", "mask", 1,
	                "value", 1, "irq", 7);
	assert_int_equal(ms_infer_inject(s.inf, bad, &e), MS_ESTATE);
	json_decref(bad);
	/* The pin goes high. */
	json_t *ev = json_pack("{s:s,s:s,s:i,s:i,s:i}", "kind", "gpio", "addr", "0x40010808",
	                       "mask", 1, "value", 1, "irq", 6);
	assert_int_equal(ms_infer_inject(s.inf, ev, &e), 0);
	json_decref(ev);
	uint32_t pc = reg(&s, UC_ARM_REG_PC);
	er = sh_run(&s, pc, 0, 300000);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_string_equal(s.out, "wait\r\npressed\r\n");
	assert_int_equal(s.irqs_taken, 1);
	sh_free(&s);
}

static uint32_t ram32(struct shell *s, uint32_t addr)
{
	uint32_t v = 0;
	uc_mem_read(s->uc, addr, &v, 4);
	return v;
}

static void set_stage(struct shell *s, uint32_t stage)
{
	uc_mem_write(s->uc, 0x20000000, &stage, 4);
}

static void go_on(struct shell *s, uint64_t insns)
{
	sh_run(s, reg(s, UC_ARM_REG_PC), 0, insns);
}

/* The "raised" field of the last infer.inject decision. */
static bool last_raised(struct shell *s, const char **why)
{
	json_t *last = NULL;
	size_t i;
	json_t *e;
	json_array_foreach(s->events, i,
	                   e) if (!strcmp(json_string_value(json_object_get(e, "type")),
	                                  "infer.inject")) last = json_object_get(e, "data");
	assert_non_null(last);
	if (why)
		*why = json_string_value(json_object_get(last, "reason"));
	return json_is_true(json_object_get(last, "raised"));
}

static int inject(struct shell *s, const char *addr, uint32_t mask, uint32_t value, int irq)
{
	struct ms_err e;
	json_t *ev = json_pack("{s:s,s:s,s:i,s:i}", "kind", "gpio", "addr", addr, "mask", mask,
	                       "value", value);
	if (irq >= 0)
		json_object_set_new(ev, "irq", json_integer(irq));
	int rc = ms_infer_inject(s->inf, ev, &e);
	json_decref(ev);
	return rc;
}

/*
 * STM32F1 EXTI line 3 (IRQ 9), PA3. The handler shares its vector with
 * line 2 (tests PR bit 2, then bit 3), like EXTI9_5. Stage 0: only the
 * NVIC is on (an edge is held back, pending); stage 1: RTSR and IMR bit 3
 * set (read-modify-write): the pending edge interrupts; stage 2: IMR bit 3
 * cleared again, RTSR still set. Counters: +4 line 3, +8 line 2.
 */
static const char *EXTI3 = ".word 0x20008000\n"
                           ".word reset + 1\n"
                           ".rept 14\n.word 0\n.endr\n"
                           ".rept 9\n.word 0\n.endr\n"
                           ".word exti + 1\n" /* IRQ 9 */
                           ".rept 22\n.word 0\n.endr\n"
                           "reset: ldr r1, =0x40010000\n"
                           "ldr r0, [r1, #0x800]\n" /* GPIOA CRL: PA3 input */
                           "bic r0, r0, #0xf000\n"
                           "orr r0, r0, #0x8000\n"
                           "str r0, [r1, #0x800]\n"
                           "ldr r2, =0xE000E100\n"
                           "mov r0, #0x200\n"
                           "str r0, [r2]\n" /* ISER0 bit 9 */
                           "ldr r6, =0x20000000\n"
                           "movs r0, #0\n"
                           "str r0, [r6]\n"
                           "str r0, [r6, #4]\n"
                           "str r0, [r6, #8]\n"
                           "1: ldr r0, [r6]\n"
                           "cmp r0, #1\n"
                           "bne 1b\n"
                           "ldr r0, [r1, #0x408]\n"
                           "orr r0, r0, #8\n"
                           "str r0, [r1, #0x408]\n" /* RTSR |= 1 << 3 */
                           "ldr r0, [r1, #0x400]\n"
                           "orr r0, r0, #8\n"
                           "str r0, [r1, #0x400]\n" /* IMR |= 1 << 3 */
                           "2: ldr r0, [r6]\n"
                           "cmp r0, #2\n"
                           "bne 2b\n"
                           "ldr r0, [r1, #0x400]\n"
                           "bic r0, r0, #8\n"
                           "str r0, [r1, #0x400]\n" /* IMR &= ~(1 << 3) */
                           "3: b 3b\n"
                           "exti: ldr r1, =0x40010400\n"
                           "ldr r0, [r1, #0x14]\n" /* PR */
                           "tst r0, #4\n"
                           "bne 5f\n"
                           "tst r0, #8\n"
                           "beq 4f\n"
                           "movs r0, #8\n"
                           "str r0, [r1, #0x14]\n"
                           "ldr r3, =0x20000000\n"
                           "ldr r2, [r3, #4]\n"
                           "adds r2, #1\n"
                           "str r2, [r3, #4]\n"
                           "b 4f\n"
                           "5: movs r0, #4\n"
                           "str r0, [r1, #0x14]\n"
                           "ldr r3, =0x20000000\n"
                           "ldr r2, [r3, #8]\n"
                           "adds r2, #1\n"
                           "str r2, [r3, #8]\n"
                           "4: bx lr\n"
                           ".ltorg\n";

static void exti_stages(bool svd)
{
	static const char *path = "/work/shared/svd/STMicro/STM32F103xx.svd";
	if (svd && access(path, R_OK) != 0) {
		fprintf(stderr, "SKIP (svd): %s absent\n", path);
		return;
	}
	size_t len = 0;
	uint8_t *bin = sh_asm(EXTI3, "cortex-m3", &len);
	assert_non_null(bin);
	struct shell s;
	struct ms_err e;
	const char *paths[] = {path};
	struct ms_infer_opts o = {
	    .mode = svd ? MS_INFER_SVD : MS_INFER_RULES, .svd_paths = paths, .n_svd = svd ? 1 : 0};
	assert_int_equal(sh_init(&s, UC_CPU_ARM_CORTEX_M3, bin, len, 0, &o, &e), 0);
	free(bin);
	const char *why = NULL;
	sh_boot(&s, 20000);

	/* Stage 0: enabled in the NVIC only. The flag is set, no interrupt. */
	assert_int_equal(inject(&s, "0x40010808", 8, 8, 9), 0);
	assert_false(last_raised(&s, &why));
	json_t *link = sh_find(&s, "infer.irq", "event-flag");
	assert_non_null(link);
	assert_string_equal(json_string_value(json_object_get(link, "addr")), "0x40010414");
	/* The handler tests bits 2 and 3: the pin's bit is the flag. */
	assert_string_equal(json_string_value(json_object_get(link, "mask")), "0x8");
	assert_string_equal(json_string_value(json_object_get(link, "tested")), "0xc");
	go_on(&s, 20000);
	assert_int_equal(s.irqs_taken, 0);
	assert_int_equal(model_value(&s, 0x40010414), 8);
	assert_int_equal(model_value(&s, 0x40010808) & 8, 8);

	/*
	 * Stage 1: unmasked in IMR. The pending edge of stage 0 interrupts
	 * now (flag and enable are a level); then one interrupt per event.
	 * PR is write-1-to-clear.
	 */
	set_stage(&s, 1);
	go_on(&s, 20000);
	assert_int_equal(s.irqs_taken, 1);
	assert_non_null(sh_find(&s, "infer.irq", "event-pending"));
	assert_int_equal(ram32(&s, 0x20000004), 1);
	assert_int_equal(model_value(&s, 0x40010414), 0);
	assert_int_equal(inject(&s, "0x40010808", 8, 0, 9), 0);
	assert_true(last_raised(&s, &why));
	go_on(&s, 20000);
	assert_int_equal(s.irqs_taken, 2);
	assert_int_equal(ram32(&s, 0x20000004), 2);
	assert_int_equal(ram32(&s, 0x20000008), 0);
	assert_int_equal(model_value(&s, 0x40010414), 0);
	assert_int_equal(model_value(&s, 0x40010808) & 8, 0);
	json_t *ack = sh_find(&s, "infer.register", "event-flag");
	assert_non_null(ack);
	assert_string_equal(json_string_value(json_object_get(ack, "clear")), "write-1");

	/* Stage 2: masked again (RTSR still set): held back, flag pending. */
	set_stage(&s, 2);
	go_on(&s, 20000);
	assert_int_equal(inject(&s, "0x40010808", 8, 8, 9), 0);
	assert_false(last_raised(&s, &why));
	assert_non_null(strstr(why, svd ? "IMR" : "+0x400"));
	go_on(&s, 20000);
	assert_int_equal(s.irqs_taken, 2);
	assert_int_equal(model_value(&s, 0x40010414), 8);
	sh_free(&s);
}

static void test_event_flag_and_enable_zero_config(void **state)
{
	exti_stages(false);
}

static void test_event_flag_and_enable_svd(void **state)
{
	exti_stages(true);
}

/*
 * Nordic-style event word (GPIOTE EVENTS_IN[1] at +0x104, IRQ 6): the
 * handler compares the whole word with zero and clears it by writing 0;
 * its enable is INTENSET bit 1 (the word's index), disabled by INTENCLR,
 * a never-read register 4 bytes above: a set/clear pair without an SVD.
 */
static const char *EVWORD = ".word 0x20008000\n"
                            ".word reset + 1\n"
                            ".rept 14\n.word 0\n.endr\n"
                            ".rept 6\n.word 0\n.endr\n"
                            ".word gpiote + 1\n" /* IRQ 6 */
                            ".rept 25\n.word 0\n.endr\n"
                            "reset: ldr r1, =0x40006000\n"
                            "ldr r5, =0x50000000\n"
                            "movs r0, #0xc\n"
                            "str r0, [r5, #0x714]\n" /* PIN_CNF[5]: input, pull-up */
                            "movs r0, #2\n"
                            "str r0, [r1, #0x304]\n" /* INTENSET IN1 */
                            "ldr r2, =0xE000E100\n"
                            "movs r0, #0x40\n"
                            "str r0, [r2]\n"
                            "ldr r6, =0x20000000\n"
                            "movs r0, #0\n"
                            "str r0, [r6]\n"
                            "str r0, [r6, #4]\n"
                            "1: ldr r0, [r6]\n"
                            "cmp r0, #1\n"
                            "bne 1b\n"
                            "movs r0, #2\n"
                            "str r0, [r1, #0x308]\n" /* INTENCLR IN1 */
                            "3: b 3b\n"
                            "gpiote: ldr r1, =0x40006000\n"
                            "ldr r0, [r1, #0x104]\n"
                            "cbz r0, 4f\n"
                            "movs r0, #0\n"
                            "str r0, [r1, #0x104]\n"
                            "ldr r3, =0x20000000\n"
                            "ldr r2, [r3, #4]\n"
                            "adds r2, #1\n"
                            "str r2, [r3, #4]\n"
                            "4: bx lr\n"
                            ".ltorg\n";

static void test_event_word_and_set_clear_pair(void **state)
{
	struct shell s;
	sh_load(&s, EVWORD, "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL);
	const char *why = NULL;
	sh_boot(&s, 20000);
	assert_int_equal(inject(&s, "0x50000510", 0x20, 0, 6), 0);
	assert_true(last_raised(&s, &why));
	json_t *link = sh_find(&s, "infer.irq", "event-flag");
	assert_non_null(link);
	assert_string_equal(json_string_value(json_object_get(link, "addr")), "0x40006104");
	assert_string_equal(json_string_value(json_object_get(link, "mask")), "0x1");
	assert_int_equal(json_integer_value(json_object_get(link, "enable_bit")), 1);
	go_on(&s, 20000);
	assert_int_equal(ram32(&s, 0x20000004), 1);
	assert_int_equal(model_value(&s, 0x40006104), 0);
	json_t *ack = sh_find(&s, "infer.register", "event-flag");
	assert_non_null(ack);
	assert_string_equal(json_string_value(json_object_get(ack, "clear")), "write-0");
	/* A second event: raised again, handled again. */
	assert_int_equal(inject(&s, "0x50000510", 0x20, 0x20, 6), 0);
	assert_true(last_raised(&s, NULL));
	go_on(&s, 20000);
	assert_int_equal(ram32(&s, 0x20000004), 2);
	/* INTENCLR: held back, the event word stays set. */
	set_stage(&s, 1);
	go_on(&s, 20000);
	assert_int_equal(inject(&s, "0x50000510", 0x20, 0, 6), 0);
	assert_false(last_raised(&s, &why));
	assert_non_null(strstr(why, "clear half"));
	go_on(&s, 20000);
	assert_int_equal(ram32(&s, 0x20000004), 2);
	assert_int_equal(model_value(&s, 0x40006104), 1);
	sh_free(&s);
}

/*
 * A loop on an injected input level waits for the level, as on hardware:
 * the status-poll solver does not answer bits driven from outside.
 */
static const char *PINPOLL = "ldr r1, =0x40010800\n"
                             "ldr r0, [r1]\n"
                             "str r0, [r1]\n" /* GPIOA CRL */
                             "ldr r6, =0x20000000\n"
                             "movs r0, #0\n"
                             "str r0, [r6]\n"
                             "str r0, [r6, #4]\n"
                             "1: ldr r0, [r6]\n"
                             "cmp r0, #1\n"
                             "bne 1b\n"
                             "2: ldr r0, [r1, #8]\n" /* IDR */
                             "tst r0, #1\n"
                             "beq 2b\n"
                             "movs r0, #1\n"
                             "str r0, [r6, #4]\n"
                             "3: b 3b\n"
                             ".ltorg\n";

static void test_poll_waits_for_injected_level(void **state)
{
	struct shell s;
	run_snippet(&s, PINPOLL, "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL, 20000);
	assert_int_equal(inject(&s, "0x40010808", 1, 0, -1), 0);
	set_stage(&s, 1);
	go_on(&s, 200000);
	assert_int_equal(ram32(&s, 0x20000004), 0);
	assert_int_equal(inject(&s, "0x40010808", 1, 1, -1), 0);
	go_on(&s, 20000);
	assert_int_equal(ram32(&s, 0x20000004), 1);
	sh_free(&s);
}

/*
 * Lines that serve several inputs. HAL's EXTI9_5_IRQHandler calls one
 * helper per pin (PR & pin, clear, callback): the pin injected (PA7) picks
 * its call among five reads of the same register. Its handled pins are
 * ORed into RAM at 0x20000010.
 */
static const char *EXTI95 = ".word 0x20008000\n"
                            ".word reset + 1\n"
                            ".rept 14\n.word 0\n.endr\n"
                            ".rept 23\n.word 0\n.endr\n"
                            ".word exti9_5 + 1\n" /* IRQ 23 */
                            ".rept 8\n.word 0\n.endr\n"
                            "reset: ldr r1, =0x40010000\n"
                            "ldr r0, [r1, #0x800]\n"
                            "str r0, [r1, #0x800]\n" /* GPIOA CRL */
                            "ldr r0, [r1, #0x400]\n"
                            "orr r0, r0, #0x3e0\n"
                            "str r0, [r1, #0x400]\n" /* IMR lines 5..9 */
                            "ldr r2, =0xE000E100\n"
                            "mov r0, #0x800000\n"
                            "str r0, [r2]\n" /* ISER0 bit 23 */
                            "1: b 1b\n"
                            "exti9_5: push {r3, lr}\n"
                            "movs r0, #0x20\n"
                            "bl hal\n"
                            "movs r0, #0x40\n"
                            "bl hal\n"
                            "movs r0, #0x80\n"
                            "bl hal\n"
                            "mov r0, #0x100\n"
                            "bl hal\n"
                            "mov r0, #0x200\n"
                            "bl hal\n"
                            "pop {r3, pc}\n"
                            "hal: ldr r1, =0x40010400\n"
                            "ldr r2, [r1, #0x14]\n"
                            "tst r2, r0\n"
                            "beq 2f\n"
                            "str r0, [r1, #0x14]\n"
                            "ldr r3, =0x20000010\n"
                            "ldr r2, [r3]\n"
                            "orrs r2, r0\n"
                            "str r2, [r3]\n"
                            "2: bx lr\n"
                            ".ltorg\n";

static void test_shared_line_hal_pin(void **state)
{
	struct shell s;
	sh_load(&s, EXTI95, "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL);
	sh_boot(&s, 20000);
	assert_int_equal(inject(&s, "0x40010808", 0x80, 0x80, 23), 0);
	assert_true(last_raised(&s, NULL));
	json_t *link = sh_find(&s, "infer.irq", "event-flag");
	assert_non_null(link);
	assert_string_equal(json_string_value(json_object_get(link, "addr")), "0x40010414");
	assert_string_equal(json_string_value(json_object_get(link, "mask")), "0x80");
	assert_int_equal(json_integer_value(json_object_get(link, "candidates")), 5);
	go_on(&s, 20000);
	assert_int_equal(s.irqs_taken, 1);
	assert_int_equal(ram32(&s, 0x20000010), 0x80);
	assert_int_equal(model_value(&s, 0x40010414), 0);
	sh_free(&s);
}

/*
 * A loop over GPIOTE channels (EVENTS_IN[0..3], one IRQ): the firmware set
 * up channel 3 only (INTENSET bit 3); its event word is the flag. Counts
 * per channel at 0x20000010.
 */
static const char *CHANNELS = ".word 0x20008000\n"
                              ".word reset + 1\n"
                              ".rept 14\n.word 0\n.endr\n"
                              ".rept 6\n.word 0\n.endr\n"
                              ".word gpiote + 1\n" /* IRQ 6 */
                              ".rept 25\n.word 0\n.endr\n"
                              "reset: ldr r5, =0x50000000\n"
                              "movs r0, #0xc\n"
                              "str r0, [r5, #0x71c]\n" /* PIN_CNF[7] */
                              "ldr r1, =0x40006000\n"
                              "movs r0, #8\n"
                              "str r0, [r1, #0x304]\n" /* INTENSET IN3 */
                              "ldr r2, =0xE000E100\n"
                              "movs r0, #0x40\n"
                              "str r0, [r2]\n"
                              "1: b 1b\n"
                              "gpiote: push {r4, lr}\n"
                              "ldr r1, =0x40006100\n"
                              "movs r4, #0\n"
                              "2: ldr r0, [r1, r4, lsl #2]\n"
                              "cbz r0, 3f\n"
                              "movs r0, #0\n"
                              "str r0, [r1, r4, lsl #2]\n"
                              "ldr r3, =0x20000010\n"
                              "ldr r2, [r3, r4, lsl #2]\n"
                              "adds r2, #1\n"
                              "str r2, [r3, r4, lsl #2]\n"
                              "3: adds r4, #1\n"
                              "cmp r4, #4\n"
                              "blt 2b\n"
                              "pop {r4, pc}\n"
                              ".ltorg\n";

static void test_shared_line_enabled_channel(void **state)
{
	struct shell s;
	sh_load(&s, CHANNELS, "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL);
	sh_boot(&s, 20000);
	assert_int_equal(inject(&s, "0x50000510", 0x80, 0x80, 6), 0);
	assert_true(last_raised(&s, NULL));
	json_t *link = sh_find(&s, "infer.irq", "event-flag");
	assert_non_null(link);
	assert_string_equal(json_string_value(json_object_get(link, "addr")), "0x4000610c");
	assert_int_equal(json_integer_value(json_object_get(link, "enable_bit")), 3);
	assert_int_equal(json_integer_value(json_object_get(link, "candidates")), 4);
	go_on(&s, 20000);
	assert_int_equal(s.irqs_taken, 1);
	for (int ch = 0; ch < 4; ch++)
		assert_int_equal(ram32(&s, 0x20000010 + 4u * (uint32_t)ch), ch == 3);
	sh_free(&s);
}

/*
 * An RTOS wrapper (Zephyr's _isr_wrapper) on every vector: it reads IPSR
 * and dispatches through a table of {argument, handler}; the flag is in
 * the handler it reaches for this line.
 */
static const char *WRAPPER = ".word 0x20008000\n"
                             ".word reset + 1\n"
                             ".rept 14\n.word 0\n.endr\n"
                             ".rept 6\n.word 0\n.endr\n"
                             ".word wrapper + 1\n" /* IRQ 6 */
                             ".rept 25\n.word 0\n.endr\n"
                             "reset: ldr r1, =0x40010000\n"
                             "ldr r0, [r1, #0x800]\n"
                             "str r0, [r1, #0x800]\n"
                             "ldr r0, [r1, #0x400]\n"
                             "orr r0, r0, #1\n"
                             "str r0, [r1, #0x400]\n" /* IMR line 0 */
                             "ldr r2, =0xE000E100\n"
                             "movs r0, #0x40\n"
                             "str r0, [r2]\n"
                             "1: b 1b\n"
                             "wrapper: push {r4, lr}\n"
                             "mrs r0, ipsr\n"
                             "subs r0, #16\n"
                             "lsls r0, r0, #3\n"
                             "ldr r1, =table\n"
                             "add r1, r0\n"
                             "ldm r1!, {r0, r3}\n"
                             "blx r3\n"
                             "pop {r4, pc}\n"
                             "isr: ldr r1, =0x40010400\n"
                             "ldr r2, [r1, #0x14]\n"
                             "lsls r2, r2, #31\n"
                             "bpl 2f\n"
                             "movs r2, #1\n"
                             "str r2, [r1, #0x14]\n"
                             "ldr r3, =0x20000010\n"
                             "str r0, [r3]\n" /* the table's argument */
                             "2: bx lr\n"
                             ".align 2\n"
                             "table: .rept 6\n.word 0, 0\n.endr\n"
                             ".word 0x1234, isr + 1\n"
                             ".ltorg\n";

static void test_rtos_wrapper(void **state)
{
	struct shell s;
	sh_load(&s, WRAPPER, "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL);
	sh_boot(&s, 20000);
	assert_int_equal(inject(&s, "0x40010808", 1, 1, 6), 0);
	assert_true(last_raised(&s, NULL));
	json_t *link = sh_find(&s, "infer.irq", "event-flag");
	assert_non_null(link);
	assert_string_equal(json_string_value(json_object_get(link, "addr")), "0x40010414");
	assert_string_equal(json_string_value(json_object_get(link, "mask")), "0x1");
	go_on(&s, 20000);
	assert_int_equal(s.irqs_taken, 1);
	assert_int_equal(ram32(&s, 0x20000010), 0x1234);
	assert_int_equal(model_value(&s, 0x40010414), 0);
	sh_free(&s);
}

/*
 * Atmel SAM PIO (PIOA at 0x400E0E00, IRQ 11): the handler reads PIO_ISR,
 * which clears on read, and tests the pin's bit; enabled through the
 * IER/IDR pair. The first event teaches nothing (the flag was read, never
 * written); at the second the flag is known to clear on read.
 */
static const char *PIO = ".word 0x20008000\n"
                         ".word reset + 1\n"
                         ".rept 14\n.word 0\n.endr\n"
                         ".rept 11\n.word 0\n.endr\n"
                         ".word pioa + 1\n" /* IRQ 11 */
                         ".rept 20\n.word 0\n.endr\n"
                         "reset: ldr r1, =0x400E0E00\n"
                         "movs r0, #0x20\n"
                         "str r0, [r1, #0x40]\n" /* PIO_IER: pin 5 */
                         "ldr r2, =0xE000E100\n"
                         "mov r0, #0x800\n"
                         "str r0, [r2]\n" /* ISER0 bit 11 */
                         "1: b 1b\n"
                         "pioa: ldr r1, =0x400E0E00\n"
                         "ldr r0, [r1, #0x4c]\n" /* PIO_ISR */
                         "tst r0, #0x20\n"
                         "beq 2f\n"
                         "ldr r0, [r1, #0x3c]\n" /* PIO_PDSR: the level */
                         "ldr r3, =0x20000010\n"
                         "ldr r2, [r3]\n"
                         "adds r2, #1\n"
                         "str r2, [r3]\n"
                         "str r0, [r3, #4]\n"
                         "2: bx lr\n"
                         ".ltorg\n";

static void test_flag_cleared_on_read(void **state)
{
	struct shell s;
	sh_load(&s, PIO, "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL);
	sh_boot(&s, 20000);
	assert_int_equal(inject(&s, "0x400E0E3C", 0x20, 0x20, 11), 0);
	assert_true(last_raised(&s, NULL));
	json_t *link = sh_find(&s, "infer.irq", "event-flag");
	assert_non_null(link);
	assert_string_equal(json_string_value(json_object_get(link, "addr")), "0x400e0e4c");
	assert_string_equal(json_string_value(json_object_get(link, "mask")), "0x20");
	go_on(&s, 20000);
	assert_int_equal(ram32(&s, 0x20000010), 1);
	assert_int_equal(ram32(&s, 0x20000014) & 0x20, 0x20);
	assert_int_equal(inject(&s, "0x400E0E3C", 0x20, 0, 11), 0);
	json_t *ack = sh_find(&s, "infer.register", "event-flag");
	assert_non_null(ack);
	assert_string_equal(json_string_value(json_object_get(ack, "clear")), "read");
	assert_true(last_raised(&s, NULL));
	go_on(&s, 20000);
	assert_int_equal(s.irqs_taken, 2);
	assert_int_equal(ram32(&s, 0x20000010), 2);
	assert_int_equal(ram32(&s, 0x20000014) & 0x20, 0);
	assert_int_equal(model_value(&s, 0x400E0E4C), 0);
	sh_free(&s);
}

/* A handler that only reads the pin: no flag, the level is the event. */
static const char *LEVEL = ".word 0x20008000\n"
                           ".word reset + 1\n"
                           ".rept 14\n.word 0\n.endr\n"
                           ".rept 6\n.word 0\n.endr\n"
                           ".word edge + 1\n" /* IRQ 6 */
                           ".rept 25\n.word 0\n.endr\n"
                           "reset: ldr r1, =0x40010800\n"
                           "ldr r0, [r1]\n"
                           "str r0, [r1]\n" /* GPIOA CRL */
                           "ldr r2, =0xE000E100\n"
                           "movs r0, #0x40\n"
                           "str r0, [r2]\n"
                           "1: b 1b\n"
                           "edge: ldr r1, =0x40010800\n"
                           "ldr r0, [r1, #8]\n"
                           "ldr r3, =0x20000010\n"
                           "str r0, [r3]\n"
                           "bx lr\n"
                           ".ltorg\n";

static void test_level_only_handler(void **state)
{
	struct shell s;
	struct ms_err e;
	sh_load(&s, LEVEL, "cortex-m3", UC_CPU_ARM_CORTEX_M3, NULL);
	sh_boot(&s, 20000);
	assert_int_equal(inject(&s, "0x40010808", 4, 4, 6), 0);
	assert_true(last_raised(&s, NULL));
	assert_non_null(sh_find(&s, "infer.irq", "event-level"));
	go_on(&s, 20000);
	assert_int_equal(s.irqs_taken, 1);
	assert_int_equal(ram32(&s, 0x20000010) & 4, 4);
	/* The decision, for an API to answer with. */
	json_t *d = (json_t *)1;
	json_t *ev = json_pack("{s:s,s:s,s:i,s:i,s:i}", "kind", "gpio", "addr", "0x40010808",
	                       "mask", 4, "value", 0, "irq", 6);
	assert_int_equal(ms_infer_inject_ex(s.inf, ev, &d, &e), 0);
	assert_non_null(d);
	assert_true(json_is_true(json_object_get(d, "raised")));
	assert_true(json_is_null(json_object_get(d, "flag")));
	json_decref(d);
	json_object_set_new(ev, "irq", json_integer(7));
	assert_int_equal(ms_infer_inject_ex(s.inf, ev, &d, &e), MS_ESTATE);
	assert_null(d);
	json_decref(ev);
	go_on(&s, 20000);
	assert_int_equal(s.irqs_taken, 2);
	assert_int_equal(ram32(&s, 0x20000010) & 4, 0);
	sh_free(&s);
}

static void test_stats(void **state)
{
	struct shell s;
	run_snippet(&s, UART_F1, "cortex-m3", UC_CPU_ARM_CORTEX_M3, "x\n", 200000);
	json_t *st = ms_infer_stats(s.inf);
	assert_int_equal(json_integer_value(json_object_get(st, "peripherals")), 1);
	json_t *d = json_object_get(st, "decisions");
	assert_int_equal(json_integer_value(json_object_get(d, "region")), 1);
	assert_true(json_integer_value(json_object_get(d, "poll")) >= 2);
	json_t *l = json_object_get(st, "fault_to_resume_ns");
	assert_int_equal(json_integer_value(json_object_get(l, "samples")), 1);
	assert_true(json_integer_value(json_object_get(l, "median")) > 0);
	json_t *m = ms_infer_mmio_recent(s.inf, 0, 3);
	assert_int_equal(json_array_size(json_object_get(m, "entries")), 3);
	assert_int_equal(json_integer_value(json_object_get(m, "next")), 3);
	json_decref(m);
	json_decref(st);
	sh_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_windows),
	    cmocka_unit_test(test_poll_tst_beq),
	    cmocka_unit_test(test_poll_busy_clear),
	    cmocka_unit_test(test_poll_multibit),
	    cmocka_unit_test(test_poll_ubfx),
	    cmocka_unit_test(test_poll_cbnz),
	    cmocka_unit_test(test_poll_through_return),
	    cmocka_unit_test(test_poll_with_timeout),
	    cmocka_unit_test(test_poll_hal_timeout),
	    cmocka_unit_test(test_ready_latches),
	    cmocka_unit_test(test_uart_console_and_input),
	    cmocka_unit_test(test_uart_waits_without_input),
	    cmocka_unit_test(test_uart_byte_registers),
	    cmocka_unit_test(test_uart_write_if_ready),
	    cmocka_unit_test(test_uart_dma_transmit),
	    cmocka_unit_test(test_rx_interrupt_helper),
	    cmocka_unit_test(test_rx_interrupt_needs_enable),
	    cmocka_unit_test(test_nonblocking_getc_it_block),
	    cmocka_unit_test(test_per_byte_helper),
	    cmocka_unit_test(test_determinism),
	    cmocka_unit_test(test_export_import),
	    cmocka_unit_test(test_import_corrupt),
	    cmocka_unit_test(test_patch),
	    cmocka_unit_test(test_state_save_load),
	    cmocka_unit_test(test_delay_loop),
	    cmocka_unit_test(test_not_a_delay_loop),
	    cmocka_unit_test(test_irq_event_driven),
	    cmocka_unit_test(test_irq_needs_nvic),
	    cmocka_unit_test(test_irq_needs_event),
	    cmocka_unit_test(test_tx_interrupt_only),
	    cmocka_unit_test(test_tx_interrupt_needs_enable),
	    cmocka_unit_test(test_tx_interrupt_deterministic),
	    cmocka_unit_test(test_tx_interrupt_event_after_byte),
	    cmocka_unit_test(test_timer_irq),
	    cmocka_unit_test(test_timer_needs_nvic),
	    cmocka_unit_test(test_timer_rules_period),
	    cmocka_unit_test(test_irq_per_peripheral_in_a_page),
	    cmocka_unit_test(test_timer_svd_period),
	    cmocka_unit_test(test_timer_counter),
	    cmocka_unit_test(test_gpio_external_interrupt),
	    cmocka_unit_test(test_event_flag_and_enable_zero_config),
	    cmocka_unit_test(test_event_flag_and_enable_svd),
	    cmocka_unit_test(test_event_word_and_set_clear_pair),
	    cmocka_unit_test(test_poll_waits_for_injected_level),
	    cmocka_unit_test(test_shared_line_hal_pin),
	    cmocka_unit_test(test_shared_line_enabled_channel),
	    cmocka_unit_test(test_rtos_wrapper),
	    cmocka_unit_test(test_flag_cleared_on_read),
	    cmocka_unit_test(test_level_only_handler),
	    cmocka_unit_test(test_ficr_or_ram),
	    cmocka_unit_test(test_stats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
