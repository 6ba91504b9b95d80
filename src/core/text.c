/*
 * text: see text.h.
 */
#include "core/text.h"

#include <stdio.h>

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
