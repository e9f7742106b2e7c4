/* SPDX-License-Identifier: MIT */
/* Helpers shared by the audit module's files; not for other modules. */
#ifndef CONDUIT_AUDIT_INTERNAL_H
#define CONDUIT_AUDIT_INTERNAL_H

#include "audit.h"

#define AUDIT_DOUBLE_MAX 32 /* "nan:" + 16 hex digits, or "-0x1.<13>p-1022" */

/* Worst-case record, so that AUDIT_LINE_MAX can never be reached by a record
 * the writer accepts: every text byte may become a 6-byte \u escape, every
 * value byte 2 hex digits or a 6-byte escape; 680 covers the fixed keys,
 * numbers and hashes of the record, 200 those of one argument. */
#define AUDIT_WORST_LINE                                                                           \
	(680u + 7u * (2u + 6u * AUDIT_TEXT_MAX) + CDT_ARGS_MAX * (200u + 2u + 6u * CDT_NAME_MAX) + \
	 6u * AUDIT_VALUES_MAX)
_Static_assert(AUDIT_WORST_LINE < AUDIT_LINE_MAX, "audit caps exceed the line limit");

#define AUDIT_TIME_LEN 27 /* 2026-11-26T06:15:14.123456Z */
int64_t audit_days_from_civil(int64_t y, unsigned m, unsigned d);
/* -EINVAL before 1970 or after 9999. */
int audit_time_format(int64_t us, char buf[AUDIT_TIME_LEN + 1]);

size_t utf8_char(const uint8_t *s, size_t n, uint32_t *ret_cp);
bool utf8_valid(const uint8_t *s, size_t n);
const char *audit_type_name(enum cdt_type t);
void audit_format_double(double d, char buf[AUDIT_DOUBLE_MAX]);
/* NULL when rec follows the schema rules, else why not. */
const char *audit_record_check(const struct audit_record *rec);
/* The same rules but those that read text bytes (lengths of NUL-terminated
 * text, UTF-8): for a caller that checks those as it reads the text. */
const char *audit_record_check_shape(const struct audit_record *rec);

/* The last second a writer spelled out: records of the same second share
 * the calendar part, only the microseconds change. */
struct audit_time_cache {
	int64_t sec; /* -1: nothing cached */
	char text[AUDIT_TIME_LEN + 1];
};
/* audit_format() through a writer's time cache. */
long audit_format_cached(const struct audit_record *rec, char *buf, size_t cap,
			 struct audit_time_cache *tc);

#endif
