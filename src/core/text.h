/*
 * text: small text helpers shared by the daemon, mctl and the runner —
 * hex digits and the C escapes users type on command lines
 * (--expect 'PASS\r\n', --input-text 'print(1+2)\r').
 *
 * Threads: pure functions, any thread.
 */
#ifndef MS_TEXT_H
#define MS_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* 0..15 for a hex digit, -1 otherwise. */
int ms_hexval(char c);

/*
 * Decode \r \n \t \0 \\ \" \' and \xNN in text into out, which must hold
 * strlen(text) bytes (decoding never grows). Returns the number of bytes,
 * or -1 with a message in err (cap bytes) for an unknown escape, a \x
 * without two hex digits, or a lone backslash at the end.
 */
long ms_unescape(const char *text, uint8_t *out, char *err, size_t cap);

/*
 * A JSON number or a numeric string ("123", "0x7b") as an unsigned value
 * no larger than max. Negative numbers, "-..." strings, trailing text and
 * overflow are refused (false).
 */
bool ms_json_uint(json_t *j, uint64_t max, uint64_t *out);

#endif
