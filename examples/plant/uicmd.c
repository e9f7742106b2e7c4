/* SPDX-License-Identifier: MIT */
#include "uicmd.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WORDS_MAX 5

struct word {
	const char *p;
	size_t len;
};

static bool word_is(const struct word *w, const char *s)
{
	return w->len == strlen(s) && memcmp(w->p, s, w->len) == 0;
}

/* Split on blanks into at most WORDS_MAX words; more is -EINVAL. */
static int split(const char *line, size_t len, struct word *words, size_t *ret_n)
{
	size_t n = 0, i = 0;

	while (i < len) {
		if (line[i] == ' ' || line[i] == '\t') {
			i++;
			continue;
		}
		size_t start = i;
		while (i < len && line[i] != ' ' && line[i] != '\t')
			i++;
		if (n == WORDS_MAX)
			return -EINVAL;
		words[n].p = line + start;
		words[n].len = i - start;
		n++;
	}
	*ret_n = n;
	return 0;
}

/* A copy of the word, NUL-terminated, for strtod/strtoul, which need one. */
static int word_copy(const struct word *w, char *buf, size_t cap)
{
	if (w->len >= cap)
		return -E2BIG;
	memcpy(buf, w->p, w->len);
	buf[w->len] = '\0';
	return 0;
}

/* A finite decimal number, nothing after it. */
static int parse_number(const struct word *w, double *ret)
{
	char buf[UICMD_ARG_MAX + 1], *end;
	double v;

	if (word_copy(w, buf, sizeof(buf)) < 0)
		return -E2BIG;
	/* strtod accepts "inf", "nan" and hex: only digits, sign, point, exponent. */
	if (strspn(buf, "+-0123456789.eE") != w->len)
		return -EINVAL;
	errno = 0;
	v = strtod(buf, &end);
	if (end == buf || *end != '\0' || errno != 0 || !isfinite(v))
		return -EINVAL;
	*ret = v;
	return 0;
}

/* An unsigned decimal integer in 1..max, digits only (no sign, no blanks). */
static int parse_uint(const char *p, size_t len, uint32_t max, uint32_t *ret)
{
	uint64_t v = 0;

	if (len == 0 || len > 10)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	if (len > 1 && p[0] == '0')
		return -EINVAL;
	if (v < 1 || v > max)
		return -EINVAL;
	*ret = (uint32_t)v;
	return 0;
}

/* "a.b.c.d:port", one spelling: no leading zeros, octets 0..255. */
static int parse_endpoint(const struct word *w, uint32_t *ret_addr, uint16_t *ret_port)
{
	const char *p = w->p, *end = w->p + w->len;
	uint32_t addr = 0, v, port;

	for (int i = 0; i < 4; i++) {
		const char *q = p;
		while (q < end && *q >= '0' && *q <= '9')
			q++;
		if (q == p || q - p > 3 || (q - p > 1 && *p == '0') || q == end)
			return -EINVAL;
		v = 0;
		for (const char *d = p; d < q; d++)
			v = v * 10 + (uint32_t)(*d - '0');
		if (v > 255 || *q != (i < 3 ? '.' : ':'))
			return -EINVAL;
		addr = addr << 8 | v;
		p = q + 1;
	}
	if (parse_uint(p, (size_t)(end - p), 65535, &port) < 0)
		return -EINVAL;
	*ret_addr = addr;
	*ret_port = (uint16_t)port;
	return 0;
}

static int parse_attack(const struct word *w, size_t n, struct uicmd *c)
{
	if (n == 4 && word_is(&w[1], "write")) {
		c->kind = UICMD_ATTACK_WRITE;
		if (word_copy(&w[2], c->arg, sizeof(c->arg)) < 0)
			return -E2BIG;
		return parse_number(&w[3], &c->value);
	}
	if (n == 3 && word_is(&w[1], "connect")) {
		c->kind = UICMD_ATTACK_CONNECT;
		return parse_endpoint(&w[2], &c->addr, &c->port);
	}
	if (n == 5 && word_is(&w[1], "flood")) {
		c->kind = UICMD_ATTACK_FLOOD;
		if (parse_uint(w[2].p, w[2].len, UICMD_FLOOD_MAX, &c->count) < 0)
			return -EINVAL;
		if (word_copy(&w[3], c->arg, sizeof(c->arg)) < 0)
			return -E2BIG;
		return parse_number(&w[4], &c->value);
	}
	return -EINVAL;
}

int uicmd_parse(const char *line, size_t len, bool attacks, struct uicmd *ret)
{
	struct word w[WORDS_MAX];
	struct uicmd c = {0};
	size_t n;
	int r;

	if (len > UICMD_LINE_MAX)
		return -E2BIG;
	if (memchr(line, '\0', len))
		return -EINVAL;
	r = split(line, len, w, &n);
	if (r < 0)
		return r;
	if (n == 0)
		return -ENODATA;
	if (n == 2 && word_is(&w[0], "sp")) {
		c.kind = UICMD_SETPOINT;
		r = parse_number(&w[1], &c.value);
	} else if (n == 2 && word_is(&w[0], "pump") &&
		   (word_is(&w[1], "on") || word_is(&w[1], "off"))) {
		c.kind = UICMD_PUMP;
		c.on = word_is(&w[1], "on");
	} else if (n == 2 && word_is(&w[0], "ack")) {
		c.kind = UICMD_ACK;
		r = word_copy(&w[1], c.arg, sizeof(c.arg));
	} else if (n == 1 && word_is(&w[0], "help")) {
		c.kind = UICMD_HELP;
	} else if (n == 1 && word_is(&w[0], "quit")) {
		c.kind = UICMD_QUIT;
	} else if (word_is(&w[0], "attack")) {
		if (!attacks)
			return -EPERM;
		r = parse_attack(w, n, &c);
	} else {
		return -EINVAL;
	}
	if (r < 0)
		return r;
	*ret = c;
	return 0;
}
