/*
 * The rehost GDB server driven by the real gdb-multiarch: a child process
 * runs "machineserver run --gdb PORT" (ms_run_main) on mps2-hello; gdb sets
 * a breakpoint, steps, reads a variable and a register, hits a watchpoint
 * with the old and new values, and continues to the end of the run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "rehost/run.h"

static char elf[1200];

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	getsockname(fd, (struct sockaddr *)&a, &l);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void test_gdb_session(void **state)
{
	char port_s[16], script[] = "/tmp/ms_rh_gdbXXXXXX", cmd[4096], out[65536];
	int port = free_port(), fd, status;
	size_t n;
	pid_t pid;
	FILE *p;

	snprintf(port_s, sizeof(port_s), "%d", port);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[] = {"run", "--board",      "mps2-an385", "--gdb", port_s, "--timeout",
		                "3",   "--input-text", "count\\r",   elf,     NULL};

		if (freopen("/dev/null", "w", stdout) == NULL)
			_exit(5);
		_exit(ms_run_main(10, argv));
	}
	fd = mkstemp(script);
	assert_true(fd >= 0);
	dprintf(fd,
	        "set confirm off\nset pagination off\ntarget remote 127.0.0.1:%d\n"
	        "break uart_putdec\ncontinue\nprint ticks\nnext\ninfo registers pc\n"
	        "print/x $xpsr\nwatch ticks\ncontinue\ndelete\ncontinue\n",
	        port);
	close(fd);
	/* The server listens before it starts waiting; give the child a moment to bind. */
	usleep(300000);
	snprintf(cmd, sizeof(cmd), "timeout 60 gdb-multiarch -batch -nx -x %s %s 2>&1", script,
	         elf);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	pclose(p);
	unlink(script);
	waitpid(pid, &status, 0);
	if (strstr(out, "Breakpoint 1, uart_putdec") == NULL)
		fprintf(stderr, "gdb said:\n%s\n", out);
	assert_non_null(strstr(out, "Breakpoint 1, uart_putdec"));
	/* "count" was typed after the greeting: the loop ran a few times. */
	assert_non_null(strstr(out, "$1 = "));
	assert_non_null(strstr(out, "pc             0x"));
	assert_non_null(strstr(out, "Hardware watchpoint 2: ticks"));
	assert_non_null(strstr(out, "Old value = "));
	assert_non_null(strstr(out, "New value = "));
	assert_non_null(strstr(out, "exited normally"));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Send one RSP packet. */
static void pkt(int fd, const char *data)
{
	char buf[512];
	unsigned cs = 0;
	size_t i;

	for (i = 0; data[i]; i++)
		cs += (unsigned char)data[i];
	snprintf(buf, sizeof(buf), "$%s#%02x", data, cs & 0xff);
	assert_int_equal(write(fd, buf, strlen(buf)), (ssize_t)strlen(buf));
}

/* Read until the buffer holds want (or 10 s pass, as a hang guard). */
static bool read_until(int fd, char *buf, size_t cap, const char *want)
{
	size_t len = 0;
	int i;

	buf[0] = 0;
	for (i = 0; i < 1000 && strstr(buf, want) == NULL; i++) {
		ssize_t k;

		usleep(10000);
		k = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
		if (k > 0) {
			len += (size_t)k;
			buf[len] = 0;
		}
	}
	return strstr(buf, want) != NULL;
}

/* Ctrl-C while running stops the guest with SIGINT; detach lets it run to its end. */
static void test_interrupt_and_detach(void **state)
{
	char port_s[16], buf[4096];
	int port = free_port(), fd = -1, status, i;
	struct sockaddr_in a = {.sin_family = AF_INET};
	pid_t pid;

	snprintf(port_s, sizeof(port_s), "%d", port);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[] = {"run",       "--board", "mps2-an385", "--gdb", port_s,
		                "--timeout", "2",       elf,          NULL};

		if (freopen("/dev/null", "w", stdout) == NULL)
			_exit(5);
		_exit(ms_run_main(8, argv));
	}
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (i = 0; i < 200; i++) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			break;
		close(fd);
		fd = -1;
		usleep(20000);
	}
	assert_true(fd >= 0);
	pkt(fd, "?");
	assert_true(read_until(fd, buf, sizeof(buf), "#"));
	assert_non_null(strstr(buf, "$T05"));
	/* Run, then interrupt. */
	pkt(fd, "c");
	usleep(200000);
	assert_int_equal(write(fd, "\x03", 1), 1);
	assert_true(read_until(fd, buf, sizeof(buf), "$T02"));
	/* Registers are readable while halted: 23 core registers of 8 hex digits. */
	pkt(fd, "g");
	assert_true(read_until(fd, buf, sizeof(buf), "#"));
	assert_true(strlen(buf) >= 1 + 23 * 8);
	/* A malformed packet gets a NAK, not a crash. */
	assert_int_equal(write(fd, "$m20000000,zz#00", 16), 16);
	assert_true(read_until(fd, buf, sizeof(buf), "-"));
	pkt(fd, "D");
	assert_true(read_until(fd, buf, sizeof(buf), "$OK"));
	close(fd);
	waitpid(pid, &status, 0);
	assert_true(WIFEXITED(status));
	/* After the detach the firmware ran on to the end of its time. */
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gdb_session),
	    cmocka_unit_test(test_interrupt_and_detach),
	};
	char cwd[1024];

	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return 1;
	snprintf(elf, sizeof(elf), "%s/build/firmware/mps2-hello.elf", cwd);
	setenv("MS_BOARDS_DIR", "boards", 1);
	if (system("make -s -C firmware BUILD=$PWD/build/firmware >/dev/null") != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
