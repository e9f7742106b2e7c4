/* SPDX-License-Identifier: MIT */
/*
 * Policy lexer, the arena the compiler allocates from, and diagnostics.
 * The source was validated before lexing (no NUL, valid UTF-8, no control
 * characters but tab, CR before LF, and LF), so the lexer only has to deal
 * with the language.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "policy-int.h"

/* ---- Arena ---- */

int arena_init(struct arena *a, size_t cap)
{
	/* One private mapping: pages are only backed when touched, and the
	 * whole compiled policy can be made read-only in one call. */
	void *m = mmap(NULL, cap, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return -ENOMEM;
	a->base = m;
	a->cap = cap;
	a->used = 0;
	a->failed = false;
	return 0;
}

void *arena_alloc(struct arena *a, size_t size, size_t align)
{
	size_t start = (a->used + (align - 1)) & ~(align - 1);
	if (start < a->used || start > a->cap || size > a->cap - start) {
		a->failed = true;
		return NULL;
	}
	a->used = start + size;
	return a->base + start; /* fresh anonymous pages are zero */
}

void *arena_array(struct arena *a, size_t n, size_t size, size_t align)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total)) {
		a->failed = true;
		return NULL;
	}
	return arena_alloc(a, total ? total : 1, align);
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	if (n == SIZE_MAX) {
		a->failed = true;
		return NULL;
	}
	char *d = arena_alloc(a, n + 1, 1);
	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

int arena_seal(struct arena *a)
{
	if (mprotect(a->base, a->cap, PROT_READ) < 0)
		return -errno;
	return 0;
}

void arena_release(struct arena *a)
{
	if (a->base)
		munmap(a->base, a->cap);
	a->base = NULL;
}

/* ---- Diagnostics ---- */

void policy_diag_print(FILE *f, const struct policy_diag *d)
{
	const char *sev = d->severity == POLICY_SEV_ERROR ? "error" : "warning";
	if (d->line == 0) {
		fprintf(f, "%s: %s: %s\n", d->file, sev, d->message);
		return;
	}
	fprintf(f, "%s:%u:%u: %s: %s\n", d->file, d->line, d->col, sev, d->message);
	if (!d->src_line)
		return;
	size_t n = d->src_line_len;
	if (n > 200)
		n = 200; /* a caret line is for humans */
	fprintf(f, "  %.*s\n  ", (int)n, d->src_line);
	for (size_t i = 1; i < d->col && i <= n; i++)
		fputc(d->src_line[i - 1] == '\t' ? '\t' : ' ', f);
	fputc('^', f);
	for (unsigned i = 1; i < d->span && d->col + i <= n; i++)
		fputc('~', f);
	fputc('\n', f);
}

void diag_at(struct diag_ctx *d, enum policy_severity sev, size_t off, size_t span, const char *fmt,
	     ...)
{
	if (sev == POLICY_SEV_ERROR) {
		if (d->stop)
			return;
		d->nerrors++;
	}
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	struct policy_diag pd = {.file = d->file, .severity = sev, .message = msg, .span = 1};
	if (off != SIZE_MAX && off <= d->len) {
		/* Line and column from the offset: diagnostics are few (capped)
		 * or come from lints in source order, so a scan is cheap enough
		 * against POLICY_FILE_MAX. */
		size_t ls = off;
		while (ls > 0 && d->src[ls - 1] != '\n')
			ls--;
		/* Lints report in source order: count lines from the last
		 * position instead of from the start every time. */
		if (ls < d->cur_off) {
			d->cur_off = 0;
			d->cur_line = 1;
		}
		unsigned line = d->cur_line ? d->cur_line : 1;
		for (const char *q = d->src + d->cur_off;
		     (q = memchr(q, '\n', (size_t)(d->src + ls - q))); q++)
			line++;
		d->cur_off = ls;
		d->cur_line = line;
		const char *nl = memchr(d->src + ls, '\n', d->len - ls);
		size_t le = nl ? (size_t)(nl - d->src) : d->len;
		if (le > ls && d->src[le - 1] == '\r')
			le--;
		pd.line = line;
		pd.col = (unsigned)(off - ls + 1);
		pd.span = span ? (unsigned)(span > 4096 ? 4096 : span) : 1;
		pd.src_line = d->src + ls;
		pd.src_line_len = le - ls;
	}
	if (d->fn)
		d->fn(d->userdata, &pd);
	if (sev == POLICY_SEV_ERROR && d->nerrors >= POLICY_ERRORS_MAX) {
		d->stop = true;
		struct policy_diag cap = {.file = d->file,
					  .severity = POLICY_SEV_ERROR,
					  .message = "too many errors, stopping",
					  .span = 1};
		if (d->fn)
			d->fn(d->userdata, &cap);
	}
}

/* ---- Lexer ---- */

void lexer_init(struct lexer *lx, struct diag_ctx *d, const char *src, size_t len)
{
	*lx = (struct lexer){.diag = d, .src = src, .len = len, .line = 1};
}

void lexer_skip_line(struct lexer *lx)
{
	const char *nl = memchr(lx->src + lx->pos, '\n', lx->len - lx->pos);
	lx->pos = nl ? (size_t)(nl - lx->src) : lx->len;
	/* leave the newline for lexer_next to count */
}

static bool is_word_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_word_char(char c)
{
	return is_word_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static void tok_set(struct lexer *lx, struct token *t, enum tok_kind k, size_t start)
{
	t->kind = k;
	t->p = lx->src + start;
	t->len = lx->pos - start;
	t->off = start;
	t->line = lx->line;
	t->col = (unsigned)(start - lx->line_start + 1);
}

static void lex_string(struct lexer *lx, struct token *t, size_t start)
{
	size_t i = start + 1;
	size_t decoded = 0;
	bool bad = false;
	while (i < lx->len && lx->src[i] != '"' && lx->src[i] != '\n') {
		if (lx->src[i] == '\\') {
			char e = i + 1 < lx->len ? lx->src[i + 1] : '\0';
			if (e == '\\' || e == '"' || e == 'n' || e == 't' || e == '*' || e == '?') {
				i += 2;
			} else if (e == 'x' && i + 3 < lx->len) {
				char hex[3] = {lx->src[i + 2], lx->src[i + 3], '\0'};
				char *end;
				unsigned long v = strtoul(hex, &end, 16);
				/* \x00 would smuggle a NUL; above 0x7f would make
				 * invalid UTF-8. */
				if (end != hex + 2 || v == 0 || v > 0x7f || hex[0] == '-' ||
				    hex[0] == '+' || hex[0] == ' ') {
					diag_at(lx->diag, POLICY_SEV_ERROR, i, 4,
						"bad \\x escape (01..7f allowed)");
					bad = true;
				}
				i += 4;
			} else {
				diag_at(lx->diag, POLICY_SEV_ERROR, i, 2,
					"unknown escape sequence");
				bad = true;
				i += 2;
			}
		} else {
			i++;
		}
		decoded++;
	}
	if (i >= lx->len || lx->src[i] != '"') {
		diag_at(lx->diag, POLICY_SEV_ERROR, start, 1, "unterminated string");
		lx->pos = i < lx->len ? i : lx->len;
		tok_set(lx, t, TOK_ERROR, start);
		return;
	}
	lx->pos = i + 1;
	if (decoded > POLICY_TOKEN_MAX) {
		diag_at(lx->diag, POLICY_SEV_ERROR, start, 1, "string longer than %u bytes",
			POLICY_TOKEN_MAX);
		bad = true;
	}
	tok_set(lx, t, bad ? TOK_ERROR : TOK_STRING, start);
}

void lexer_next(struct lexer *lx, struct token *t)
{
	for (;;) {
		if (lx->pos == lx->line_start) {
			const char *nl = memchr(lx->src + lx->pos, '\n', lx->len - lx->pos);
			size_t end = nl ? (size_t)(nl - lx->src) : lx->len;
			if (end - lx->pos > POLICY_LINE_MAX) {
				diag_at(lx->diag, POLICY_SEV_ERROR, lx->pos + POLICY_LINE_MAX, 1,
					"line longer than %u bytes", POLICY_LINE_MAX);
				lx->pos = end;
				tok_set(lx, t, TOK_ERROR, end);
				return;
			}
		}
		if (lx->pos >= lx->len) {
			tok_set(lx, t, TOK_EOF, lx->len);
			return;
		}
		char c = lx->src[lx->pos];
		if (c == ' ' || c == '\t' || c == '\r') {
			lx->pos++;
			continue;
		}
		if (c == '#') {
			lexer_skip_line(lx);
			continue;
		}
		break;
	}
	size_t start = lx->pos;
	char c = lx->src[start];
	char n = start + 1 < lx->len ? lx->src[start + 1] : '\0';
	if (c == '\n') {
		lx->pos++;
		tok_set(lx, t, TOK_NL, start);
		lx->line++;
		lx->line_start = lx->pos;
		return;
	}
	if (c == '{' || c == '}' || c == ',' || c == '/' || c == '=') {
		lx->pos++;
		enum tok_kind k = c == '{'   ? TOK_LBRACE
				  : c == '}' ? TOK_RBRACE
				  : c == ',' ? TOK_COMMA
				  : c == '/' ? TOK_SLASH
					     : TOK_EQ;
		if (k == TOK_LBRACE && ++lx->depth > POLICY_NESTING_MAX) {
			diag_at(lx->diag, POLICY_SEV_ERROR, start, 1,
				"nesting deeper than %d levels", POLICY_NESTING_MAX);
			lx->depth--;
			tok_set(lx, t, TOK_ERROR, start);
			return;
		}
		if (k == TOK_RBRACE && lx->depth > 0)
			lx->depth--;
		tok_set(lx, t, k, start);
		return;
	}
	if (c == '.' && n == '.') {
		lx->pos += 2;
		tok_set(lx, t, TOK_RANGE, start);
		return;
	}
	if (c == '"') {
		lex_string(lx, t, start);
		return;
	}
	if (is_digit(c) || ((c == '-' || c == '+') && is_digit(n))) {
		size_t i = start + 1;
		while (i < lx->len && is_digit(lx->src[i]))
			i++;
		if (i + 1 < lx->len && lx->src[i] == '.' && is_digit(lx->src[i + 1])) {
			i++;
			while (i < lx->len && is_digit(lx->src[i]))
				i++;
		}
		if (i < lx->len && (lx->src[i] == 'e' || lx->src[i] == 'E')) {
			size_t j = i + 1;
			if (j < lx->len && (lx->src[j] == '-' || lx->src[j] == '+'))
				j++;
			if (j < lx->len && is_digit(lx->src[j])) {
				while (j < lx->len && is_digit(lx->src[j]))
					j++;
				i = j;
			}
		}
		while (i < lx->len && ((lx->src[i] >= 'a' && lx->src[i] <= 'z') ||
				       (lx->src[i] >= 'A' && lx->src[i] <= 'Z')))
			i++; /* unit suffix: 32M, 100ms */
		lx->pos = i;
		if (i - start > 64) {
			diag_at(lx->diag, POLICY_SEV_ERROR, start, i - start, "number too long");
			tok_set(lx, t, TOK_ERROR, start);
			return;
		}
		tok_set(lx, t, TOK_NUMBER, start);
		return;
	}
	/* "-inf" is the one word with a sign (a double in expect lines). */
	if (c == '-' && lx->len - start >= 4 && memcmp(lx->src + start, "-inf", 4) == 0 &&
	    (lx->len - start == 4 || !is_word_char(lx->src[start + 4]))) {
		lx->pos = start + 4;
		tok_set(lx, t, TOK_WORD, start);
		return;
	}
	if (is_word_start(c)) {
		size_t i = start + 1;
		while (i < lx->len && is_word_char(lx->src[i])) {
			/* "a..b" is a range of words only in error; stop before .. */
			if (lx->src[i] == '.' && i + 1 < lx->len && lx->src[i + 1] == '.')
				break;
			i++;
		}
		lx->pos = i;
		if (i - start > POLICY_TOKEN_MAX) {
			diag_at(lx->diag, POLICY_SEV_ERROR, start, 1, "word longer than %u bytes",
				POLICY_TOKEN_MAX);
			tok_set(lx, t, TOK_ERROR, start);
			return;
		}
		tok_set(lx, t, TOK_WORD, start);
		return;
	}
	/* Multi-byte UTF-8 outside strings and comments: point at the lead byte. */
	size_t cl = 1;
	while (start + cl < lx->len && ((unsigned char)lx->src[start + cl] & 0xc0) == 0x80)
		cl++;
	diag_at(lx->diag, POLICY_SEV_ERROR, start, 1, "unexpected character '%.*s'", (int)cl,
		lx->src + start);
	lx->pos = start + cl;
	tok_set(lx, t, TOK_ERROR, start);
}

long str_decode(const char *p, size_t len, bool glob, char *out, size_t cap, bool *ret_meta)
{
	bool meta = false;
	size_t o = 0;
	if (len < 2)
		return -EINVAL;
	for (size_t i = 1; i + 1 < len; i++) {
		char c = p[i];
		char buf[2];
		size_t nb = 1;
		if (c == '\\') {
			if (i + 2 >= len)
				return -EINVAL;
			char e = p[++i];
			switch (e) {
			case 'n':
				buf[0] = '\n';
				break;
			case 't':
				buf[0] = '\t';
				break;
			case '"':
				buf[0] = '"';
				break;
			case '\\':
			case '*':
			case '?':
				/* In a glob these stay quoted for the matcher. */
				if (glob) {
					buf[0] = '\\';
					buf[1] = e;
					nb = 2;
				} else {
					buf[0] = e;
				}
				break;
			case 'x': {
				if (i + 2 >= len)
					return -EINVAL;
				char hex[3] = {p[i + 1], p[i + 2], '\0'};
				char *end;
				unsigned long v = strtoul(hex, &end, 16);
				if (end != hex + 2 || v == 0 || v > 0x7f)
					return -EINVAL;
				i += 2;
				buf[0] = (char)v;
				if (glob && (v == '*' || v == '?' || v == '\\')) {
					buf[1] = buf[0];
					buf[0] = '\\';
					nb = 2;
				}
				break;
			}
			default:
				return -EINVAL;
			}
		} else {
			if (c == '"')
				return -EINVAL; /* an unescaped quote inside */
			if (glob && (c == '*' || c == '?'))
				meta = true;
			buf[0] = c;
		}
		if (nb > cap - o)
			return -ENOBUFS;
		memcpy(out + o, buf, nb);
		o += nb;
	}
	if (ret_meta)
		*ret_meta = meta;
	return (long)o;
}

int num_parse(const char *p, size_t len, struct policy_num *ret)
{
	char buf[80];
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, p, len);
	buf[len] = '\0';
	bool neg = buf[0] == '-';
	size_t i = (buf[0] == '-' || buf[0] == '+') ? 1 : 0;
	if (i >= len || !is_digit(buf[i]))
		return -EINVAL;
	bool integer = true;
	for (size_t j = i; j < len; j++) {
		if (buf[j] == '.' || buf[j] == 'e' || buf[j] == 'E')
			integer = false;
		else if (!is_digit(buf[j]) && !((buf[j] == '-' || buf[j] == '+') && j > i))
			return -EINVAL;
	}
	if (integer) {
		uint64_t v = 0;
		for (size_t j = i; j < len; j++) {
			if (!is_digit(buf[j]))
				return -EINVAL;
			if (__builtin_mul_overflow(v, 10, &v) ||
			    __builtin_add_overflow(v, (uint64_t)(buf[j] - '0'), &v))
				return -ERANGE;
		}
		if (neg) {
			if (v > (uint64_t)INT64_MAX + 1)
				return -ERANGE;
			ret->kind = POLICY_NUM_I64;
			ret->v.i = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
		} else if (v <= INT64_MAX) {
			ret->kind = POLICY_NUM_I64;
			ret->v.i = (int64_t)v;
		} else {
			ret->kind = POLICY_NUM_U64;
			ret->v.u = v;
		}
		return 0;
	}
	char *end;
	errno = 0;
	double d = strtod(buf, &end);
	if (end != buf + len)
		return -EINVAL;
	if (!isfinite(d))
		return -ERANGE;
	ret->kind = POLICY_NUM_F64;
	ret->v.d = d;
	return 0;
}
