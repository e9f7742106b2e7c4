/* SPDX-License-Identifier: MIT */
/* The audit parser's scanners (audit-scan.c); internal to the module. */
#ifndef CONDUIT_AUDIT_SCAN_H
#define CONDUIT_AUDIT_SCAN_H

#include "audit-internal.h"

struct scan {
	const char *s;
	size_t n, i;
	struct audit_scratch *sc;
	struct audit_parse_error *err;
};

/* Each returns 0 or -EBADMSG with the error's column and reason set;
 * strings and hex are decoded into the scratch. */
int scan_fail(struct scan *c, const char *why);
bool scan_peek(const struct scan *c, char ch);
int scan_litn(struct scan *c, const char *t, size_t len);
bool scan_acceptn(struct scan *c, const char *t, size_t len);
/* Expect (or take, when there) a string literal; its length at compile time. */
#define scan_lit(c, t)	  scan_litn(c, "" t "", sizeof(t) - 1)
#define scan_accept(c, t) scan_acceptn(c, "" t "", sizeof(t) - 1)
int scan_put(struct scan *c, const void *p, size_t n);
int scan_u64(struct scan *c, uint64_t *ret);
int scan_i64(struct scan *c, int64_t *ret);
/* A quoted string, NUL-terminated in scratch; *ret_len excludes the NUL. */
int scan_string(struct scan *c, const char **ret, size_t *ret_len);
/* A text field: no NUL inside, at most max bytes. */
int scan_text(struct scan *c, size_t max, const char **ret);
/* Quoted lower-case hex: exactly want bytes when want != 0, at most max. */
int scan_hex(struct scan *c, size_t want, size_t max, const uint8_t **ret, size_t *ret_len);
/* Fixed-size hex into out; gives its scratch back. */
int scan_hash(struct scan *c, uint8_t *out, size_t n);
int scan_double(struct scan *c, double *ret);
int scan_time(struct scan *c, int64_t *ret);

#endif
