/* SPDX-License-Identifier: MIT */
/* The ui layer's dashboard, free of I/O: what the operator sees (live
 * values, alarms, trends, the command line) and how it is drawn, either as
 * one ANSI screen redrawn in place or as plain lines. */
#ifndef PLANT_DASH_H
#define PLANT_DASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tags.h"
#include "uicmd.h"

#define DASH_ALARMS_MAX	 8    /* alarm rows shown; the count says how many exist */
#define DASH_ALARM_LEN	 120  /* bytes of one alarm row */
#define DASH_TREND_W	 48   /* columns of a trend: its row fits 80 columns */
#define DASH_TRENDS	 2    /* tank level, NaOH concentration */
#define DASH_HIST_POINTS 3600 /* the most points hist.query returns */
#define DASH_STATUS_LEN	 160
#define DASH_SCREEN_MAX	 8192 /* bytes of one rendered screen */

struct dash_value {
	bool have;
	bool stale; /* the io layer's last poll failed */
	double v;
};

struct dash_trend {
	size_t tag; /* enum tag_id */
	uint64_t window_s;
	bool have[DASH_TREND_W];
	double v[DASH_TREND_W];
};

struct dash {
	struct dash_value tags[TAG_COUNT];
	size_t nalarms;	      /* rows kept */
	size_t alarm_active;  /* alarms not in `normal` */
	uint64_t alarm_count; /* alarms configured (alarm.list's count) */
	char alarms[DASH_ALARMS_MAX][DASH_ALARM_LEN];
	struct dash_trend trends[DASH_TRENDS];
	char status[DASH_STATUS_LEN];
	char input[UICMD_LINE_MAX + 1];
	size_t input_len;
	bool utf8;	  /* the terminal takes UTF-8 block characters */
	bool compromised; /* shown in the title, so nobody mistakes the scenario */
};

void dash_init(struct dash *d, bool utf8, bool compromised);

/* Replace the alarm rows with alarm.list's text: one alarm per line,
 * fields `id state priority tag value message` separated by tabs.  Only
 * alarms not in `normal` get a row; rows beyond DASH_ALARMS_MAX are
 * counted, not kept; a row is cut to fit; control bytes become '?'.
 * -EINVAL when a line lacks a field (the rows then are left unchanged). */
int dash_set_alarms(struct dash *d, uint64_t count, const char *text, size_t len);

/* One alarm row into buf: "id  state  prio  value  message" (the id names the tag). */
void dash_format_alarm(const char *id, const char *state, const char *prio, const char *tag,
		       double value, const char *message, char *buf, size_t cap);

/* Fill trend t from hist.query's points (records of 16 bytes, little-endian
 * u64 ts_ms | f64 value): the window ending at now_ms is cut into
 * DASH_TREND_W columns, each the mean of its points; a column without a
 * point holds the value before it (the historian stores changes).  -EINVAL when len is
 * not a whole number of records, -E2BIG above DASH_HIST_POINTS. */
int dash_set_trend(struct dash_trend *t, const uint8_t *points, size_t len, uint64_t now_ms);

/* A sparkline of n columns scaled to lo..hi, NUL-terminated; a missing
 * column is a blank.  UTF-8 blocks or ASCII.  Returns the length, or
 * -ENOBUFS when cap is too small (4 bytes per column in UTF-8, plus 1). */
int dash_sparkline(const double *v, const bool *have, size_t n, double lo, double hi, bool utf8,
		   char *buf, size_t cap);

/* "1234 mm", "7.21 pH", "on", "--" (none yet); " (stale)" appended. */
void dash_format_value(const struct dash *d, size_t tag, char *buf, size_t cap);

/* The screen's rows besides the alarm rows. */
#define DASH_FIXED_ROWS 16

/* The whole screen as ANSI text for a terminal of cols x rows: cursor home,
 * each row cleared to its end, the rest of the screen cleared, the cursor
 * left on the command line.  Rows are cut at cols; alarm rows are cut to
 * what fits in rows (at least one, the last saying how many more), so the
 * screen never scrolls.  Returns the length (< cap, NUL-terminated), or
 * -ENOBUFS. */
int dash_render(const struct dash *d, int cols, int rows, char *buf, size_t cap);

#endif
