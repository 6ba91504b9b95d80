/*
 * text: see text.h.
 */
#include "core/text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int ms_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long ms_unescape(const char *text, uint8_t *out, char *err, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; text[i] != '\0'; i++) {
		int hi, lo;

		if (text[i] != '\\') {
			out[o++] = (uint8_t)text[i];
			continue;
		}
		i++;
		switch (text[i]) {
		case 'r':
			out[o++] = '\r';
			break;
		case 'n':
			out[o++] = '\n';
			break;
		case 't':
			out[o++] = '\t';
			break;
		case '0':
			out[o++] = '\0';
			break;
		case '\\':
		case '"':
		case '\'':
			out[o++] = (uint8_t)text[i];
			break;
		case 'x':
			hi = text[i + 1] != '\0' ? ms_hexval(text[i + 1]) : -1;
			lo = hi >= 0 && text[i + 2] != '\0' ? ms_hexval(text[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				snprintf(err, cap,
				         "bad escape at offset %zu: \\x needs two hex digits",
				         i - 1);
				return -1;
			}
			out[o++] = (uint8_t)(hi << 4 | lo);
			i += 2;
			break;
		case '\0':
			snprintf(err, cap, "a lone backslash ends the text (write \\\\ for one)");
			return -1;
		default:
			snprintf(err, cap,
			         "unknown escape \\%c at offset %zu (known: \\r \\n \\t \\0 \\\\ "
			         "\\\" \\' \\xNN)",
			         text[i], i - 1);
			return -1;
		}
	}
	return (long)o;
}

bool ms_json_uint(json_t *j, uint64_t max, uint64_t *out)
{
	if (json_is_integer(j)) {
		json_int_t v = json_integer_value(j);

		if (v < 0 || (uint64_t)v > max)
			return false;
		*out = (uint64_t)v;
		return true;
	}
	if (json_is_string(j)) {
		const char *s = json_string_value(j);
		char *end;
		unsigned long long v;

		/* strtoull would wrap "-1" to the largest value. */
		if (s[0] == '-')
			return false;
		errno = 0;
		v = strtoull(s, &end, 0);
		if (errno != 0 || end == s || *end != '\0' || v > max)
			return false;
		*out = v;
		return true;
	}
	return false;
}
