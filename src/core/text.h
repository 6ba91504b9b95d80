/*
 * text: small text helpers shared by the daemon, mctl and the runner —
 * hex digits and the C escapes users type on command lines
 * (--expect 'PASS\r\n', --input-text 'print(1+2)\r').
 *
 * Threads: pure functions, any thread.
 */
#ifndef MS_TEXT_H
#define MS_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* 0..15 for a hex digit, -1 otherwise. */
int ms_hexval(char c);

/*
 * Decode \r \n \t \0 \\ \" \' and \xNN in text into out, which must hold
 * strlen(text) bytes (decoding never grows). Returns the number of bytes,
 * or -1 with a message in err (cap bytes) for an unknown escape, a \x
 * without two hex digits, or a lone backslash at the end.
 */
long ms_unescape(const char *text, uint8_t *out, char *err, size_t cap);

#endif
