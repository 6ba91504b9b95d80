/*
 * fw_fixture: builds a tiny Cortex-M3 firmware for mps2-an385 with the
 * real arm-none-eabi-gcc, for the QEMU backend tests.
 *
 * The firmware prints "BOOT\n" on the CMSDK UART0 (0x40004000), then
 * echoes every received byte; '?' prints "last=<c>\n" with the last other
 * byte received (kept in RAM, so snapshots can be checked through the
 * console), '!' makes it lock up on purpose (QEMU 7.2 aborts on an M-profile
 * lockup), which lets tests watch a child die.
 *
 * Test-only header: static functions, included by one test file each.
 */
#ifndef MS_TEST_FW_FIXTURE_H
#define MS_TEST_FW_FIXTURE_H

#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char fw_source[] =
    "#define UART ((volatile unsigned *)0x40004000)\n"
    "static volatile char last;\n"
    "static void put(char c) { while (UART[1] & 1) ; UART[0] = c; }\n"
    "static void puts_(const char *s) { while (*s) put(*s++); }\n"
    "void reset_handler(void)\n"
    "{\n"
    "	UART[4] = 16; UART[2] = 3; last = '-';\n"
    "	puts_(\"BOOT\\n\");\n"
    "	for (;;) {\n"
    "		if (UART[1] & 2) {\n"
    "			char c = (char)UART[0];\n"
    "			if (c == '?') { puts_(\"last=\"); put(last); put('\\n'); }\n"
    "			else if (c == '!') { ((void (*)(void))0xfffffff0u)(); }\n"
    "			else { last = c; put(c); }\n"
    "		}\n"
    "	}\n"
    "}\n"
    "void fault(void) { for (;;) ; }\n"
    "__attribute__((section(\".vectors\"), used)) void *const vectors[] = {\n"
    "	(void *)0x20010000, (void *)reset_handler, (void *)0, (void *)0 };\n";

/* HardFault vector left 0: a fault escalates to lockup, which QEMU 7.2 treats as fatal. */
static const char fw_ld[] = "ENTRY(reset_handler)\n"
                            "SECTIONS {\n"
                            "  .text 0x0 : { KEEP(*(.vectors)) *(.text*) *(.rodata*) }\n"
                            "  .bss 0x20000000 (NOLOAD) : { *(.bss*) *(COMMON) }\n"
                            "}\n";

static int fw_run(char *const argv[])
{
	pid_t pid;
	int st;

	if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0)
		return -1;
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Build fw.elf, fw.bin and fw.hex into dir. Returns 0 on success. */
static int fw_build(const char *dir)
{
	char c[512], ld[512], elf[512], bin[512], hex[512];
	FILE *f;

	snprintf(c, sizeof(c), "%s/fw.c", dir);
	snprintf(ld, sizeof(ld), "%s/fw.ld", dir);
	snprintf(elf, sizeof(elf), "%s/fw.elf", dir);
	snprintf(bin, sizeof(bin), "%s/fw.bin", dir);
	snprintf(hex, sizeof(hex), "%s/fw.hex", dir);
	f = fopen(c, "w");
	if (!f)
		return -1;
	fputs(fw_source, f);
	fclose(f);
	f = fopen(ld, "w");
	if (!f)
		return -1;
	fputs(fw_ld, f);
	fclose(f);
	{
		char *argv[] = {"arm-none-eabi-gcc",
		                "-mcpu=cortex-m3",
		                "-mthumb",
		                "-Os",
		                "-nostdlib",
		                "-ffreestanding",
		                "-T",
		                ld,
		                "-o",
		                elf,
		                c,
		                NULL};

		if (fw_run(argv))
			return -1;
	}
	{
		char *argv[] = {"arm-none-eabi-objcopy", "-O", "binary", elf, bin, NULL};

		if (fw_run(argv))
			return -1;
	}
	{
		char *argv[] = {"arm-none-eabi-objcopy", "-O", "ihex", elf, hex, NULL};

		if (fw_run(argv))
			return -1;
	}
	return 0;
}

#endif
