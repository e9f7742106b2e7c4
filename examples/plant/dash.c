/* SPDX-License-Identifier: MIT */
#include "dash.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REC_SIZE 16

/* Bytes another layer sent must never reach the terminal as control
 * sequences: a compromised alarm layer could otherwise rewrite the
 * operator's screen or inject input.  Everything below 0x20 and DEL
 * becomes '?'. */
static void copy_clean(char *dst, size_t cap, const char *src, size_t len)
{
	size_t n = len < cap - 1 ? len : cap - 1;

	/* Do not cut a UTF-8 sequence: back up to the start of a character. */
	if (n < len)
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	dst[n] = '\0';
}

void dash_init(struct dash *d, bool utf8, bool compromised)
{
	memset(d, 0, sizeof(*d));
	d->utf8 = utf8;
	d->compromised = compromised;
	d->trends[0] = (struct dash_trend){.tag = TAG_TANK_LEVEL, .window_s = 300};
	d->trends[1] = (struct dash_trend){.tag = TAG_NAOH_CONC, .window_s = 300};
}

void dash_format_alarm(const char *id, const char *state, const char *prio, const char *tag,
		       double value, const char *message, char *buf, size_t cap)
{
	char raw[DASH_ALARM_LEN * 2];
	/* The id names the tag already (e.g. "plant.tank.level.hi"). */
	(void)tag;
	int n = snprintf(raw, sizeof(raw), "%-28s %-12s %-6s %8.2f  %s", id, state, prio, value,
			 message);

	copy_clean(buf, cap, raw,
		   n < 0		     ? 0
		   : (size_t)n < sizeof(raw) ? (size_t)n
					     : sizeof(raw) - 1);
}

/* Split one alarm.list line into its six tab-separated fields. */
static int alarm_fields(const char *p, size_t len, char f[6][DASH_ALARM_LEN])
{
	size_t i = 0;

	for (int k = 0; k < 6; k++) {
		size_t start = i;
		while (i < len && (p[i] != '\t' || k == 5))
			i++;
		if (k < 5 && i == len)
			return -EINVAL;
		copy_clean(f[k], DASH_ALARM_LEN, p + start, i - start);
		i++;
	}
	return 0;
}

int dash_set_alarms(struct dash *d, uint64_t count, const char *text, size_t len)
{
	char rows[DASH_ALARMS_MAX][DASH_ALARM_LEN];
	char f[6][DASH_ALARM_LEN];
	size_t n = 0, i = 0;

	while (i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t l = nl ? (size_t)(nl - (text + i)) : len - i;
		if (l > 0) {
			char *end;
			double v;
			if (alarm_fields(text + i, l, f) < 0)
				return -EINVAL;
			v = strtod(f[4], &end);
			if (end == f[4])
				v = NAN;
			/* The operator's list shows what needs attention; alarms in
			 * `normal` only count. */
			if (strcmp(f[1], "normal") != 0) {
				if (n < DASH_ALARMS_MAX)
					dash_format_alarm(f[0], f[1], f[2], f[3], v, f[5], rows[n],
							  DASH_ALARM_LEN);
				n++;
			}
		}
		i += l + 1;
	}
	d->nalarms = n < DASH_ALARMS_MAX ? n : DASH_ALARMS_MAX;
	memcpy(d->alarms, rows, d->nalarms * DASH_ALARM_LEN);
	d->alarm_active = n;
	d->alarm_count = count;
	return 0;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int dash_set_trend(struct dash_trend *t, const uint8_t *points, size_t len, uint64_t now_ms)
{
	double mean[DASH_TREND_W] = {0};
	uint32_t cnt[DASH_TREND_W] = {0};
	uint64_t window_ms = t->window_s * 1000, start;

	if (len % REC_SIZE != 0)
		return -EINVAL;
	if (len / REC_SIZE > DASH_HIST_POINTS)
		return -E2BIG;
	if (window_ms == 0)
		return -EINVAL;
	start = now_ms > window_ms ? now_ms - window_ms : 0;
	for (size_t off = 0; off < len; off += REC_SIZE) {
		uint64_t ts = le64(points + off), bits = le64(points + off + 8);
		double v;
		memcpy(&v, &bits, sizeof(v));
		if (ts < start || ts > now_ms || !isfinite(v))
			continue;
		/* ts - start < window_ms, so the product stays far below 2^64. */
		size_t col = (size_t)((ts - start) * DASH_TREND_W / window_ms);
		if (col >= DASH_TREND_W)
			col = DASH_TREND_W - 1;
		/* A running mean: a sum of huge values (another layer's bytes) would
		 * overflow to inf; m(1 - 1/k) + v/k stays within max(|m|, |v|). */
		cnt[col]++;
		mean[col] = (mean[col] - mean[col] / cnt[col]) + v / cnt[col];
	}
	for (size_t c = 0; c < DASH_TREND_W; c++) {
		t->have[c] = cnt[c] > 0 && isfinite(mean[c]);
		t->v[c] = t->have[c] ? mean[c] : 0;
		/* The historian stores changes: a value holds until the next one,
		 * so a column without a point after the first shows the last value. */
		if (!t->have[c] && c > 0 && t->have[c - 1]) {
			t->have[c] = true;
			t->v[c] = t->v[c - 1];
		}
	}
	return 0;
}

int dash_sparkline(const double *v, const bool *have, size_t n, double lo, double hi, bool utf8,
		   char *buf, size_t cap)
{
	static const char *const blocks[8] = {"\u2581", "\u2582", "\u2583", "\u2584",
					      "\u2585", "\u2586", "\u2587", "\u2588"};
	static const char ascii[8] = {'_', '.', '-', ':', '=', '+', '*', '#'};
	size_t pos = 0, need = n > SIZE_MAX / 4 - 1 ? SIZE_MAX : n * (utf8 ? 3 : 1) + 1;

	if (cap < need)
		return -ENOBUFS;
	if (need > (size_t)INT32_MAX)
		return -E2BIG;
	for (size_t i = 0; i < n; i++) {
		int level = 0;
		if (!have[i]) {
			buf[pos++] = ' ';
			continue;
		}
		if (hi > lo && isfinite(v[i])) {
			double f = (v[i] - lo) / (hi - lo);
			f = f < 0 ? 0 : f > 1 ? 1 : f;
			level = (int)lround(f * 7);
		}
		if (utf8) {
			memcpy(buf + pos, blocks[level], 3);
			pos += 3;
		} else {
			buf[pos++] = ascii[level];
		}
	}
	buf[pos] = '\0';
	return (int)pos;
}

void dash_format_value(const struct dash *d, size_t tag, char *buf, size_t cap)
{
	const struct tag_def *def = tags_get(tag);
	const struct dash_value *val = tag < TAG_COUNT ? &d->tags[tag] : NULL;

	if (!def || !val || !val->have) {
		snprintf(buf, cap, "--");
		return;
	}
	if (def->type == TAG_TYPE_BOOL)
		snprintf(buf, cap, "%s%s", val->v != 0 ? "on" : "off",
			 val->stale ? " (stale)" : "");
	else
		snprintf(buf, cap, "%.*f %s%s", def->scale > 1 ? 2 : 0, val->v, def->unit,
			 val->stale ? " (stale)" : "");
}

struct out {
	char *buf;
	size_t cap, len;
	bool overflow;
};

static void out_raw(struct out *o, const char *s, size_t n)
{
	if (o->overflow || n >= o->cap - o->len) {
		o->overflow = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

/* One screen row: at most cols columns (UTF-8 continuation bytes take
 * none), then "clear to end of line" and a newline. */
__attribute__((format(printf, 3, 4))) static void out_row(struct out *o, int cols, const char *fmt,
							  ...)
{
	char row[512];
	va_list ap;
	int n, col = 0;
	size_t i;

	va_start(ap, fmt);
	n = vsnprintf(row, sizeof(row), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(row))
		n = sizeof(row) - 1;
	for (i = 0; i < (size_t)n; i++) {
		if (((unsigned char)row[i] & 0xc0) != 0x80 && col++ == cols)
			break;
	}
	out_raw(o, row, i);
	out_raw(o, "\x1b[K\r\n", 5);
}

static void trend_row(const struct dash *d, struct out *o, int cols, const struct dash_trend *t,
		      const char *label)
{
	char line[DASH_TREND_W * 3 + 1];
	double lo = INFINITY, hi = -INFINITY;
	const struct tag_def *def = tags_get(t->tag);

	for (size_t i = 0; i < DASH_TREND_W; i++) {
		if (!t->have[i])
			continue;
		lo = t->v[i] < lo ? t->v[i] : lo;
		hi = t->v[i] > hi ? t->v[i] : hi;
	}
	if (lo > hi) {
		out_row(o, cols, "  %-9s (no history yet)", label);
		return;
	}
	if (dash_sparkline(t->v, t->have, DASH_TREND_W, lo, hi, d->utf8, line, sizeof(line)) < 0)
		line[0] = '\0';
	out_row(o, cols, "  %-9s %s  %.0f..%.0f %s", label, line, lo, hi, def ? def->unit : "");
}

int dash_render(const struct dash *d, int cols, int rows, char *buf, size_t cap)
{
	struct out o = {.buf = buf, .cap = cap};
	char a[48], b[48], c[48];

	if (cap == 0)
		return -ENOBUFS;
	buf[0] = '\0';
	if (cols < 20)
		cols = 20;
	out_raw(&o, "\x1b[H", 3);
	out_row(&o, cols,
		"\x1b[1m CONDUIT DEMO PLANT: NaOH dosing skid\x1b[0m   ui layer, sandboxed%s",
		d->compromised ? "   \x1b[7m COMPROMISED (test switch) \x1b[0m" : "");
	out_row(&o, cols, "%s", "");
	dash_format_value(d, TAG_TANK_LEVEL, a, sizeof(a));
	dash_format_value(d, TAG_HIGH_LEVEL, b, sizeof(b));
	out_row(&o, cols, "  Tank level     %-16s  High level   %s", a, b);
	dash_format_value(d, TAG_PH, a, sizeof(a));
	dash_format_value(d, TAG_ESTOP, b, sizeof(b));
	out_row(&o, cols, "  pH             %-16s  E-stop       %s", a, b);
	dash_format_value(d, TAG_NAOH_CONC, a, sizeof(a));
	dash_format_value(d, TAG_PUMP_RUN, b, sizeof(b));
	dash_format_value(d, TAG_PUMP_SPEED_FB, c, sizeof(c));
	out_row(&o, cols, "  NaOH conc.     %-16s  Pump P-101   %s, speed %s", a, b, c);
	dash_format_value(d, TAG_NAOH_SP, a, sizeof(a));
	dash_format_value(d, TAG_INLET_VALVE, b, sizeof(b));
	out_row(&o, cols, "  NaOH setpoint  %-16s  Valve V-201  %s", a, b);
	out_row(&o, cols, "%s", "");
	out_row(&o, cols, " Trends, last %llu s", (unsigned long long)d->trends[0].window_s);
	trend_row(d, &o, cols, &d->trends[0], "level");
	trend_row(d, &o, cols, &d->trends[1], "NaOH");
	out_row(&o, cols, "%s", "");
	out_row(&o, cols, " Alarms: %zu needing attention, of %llu", d->alarm_active,
		(unsigned long long)d->alarm_count);
	size_t room = rows > DASH_FIXED_ROWS ? (size_t)(rows - DASH_FIXED_ROWS) : 1;
	size_t show = d->nalarms < room ? d->nalarms : room;
	bool more = d->alarm_active > show;
	if (more && show == room)
		show--; /* the last row says how many are not shown */
	for (size_t i = 0; i < show; i++)
		out_row(&o, cols, "  %s", d->alarms[i]);
	if (more)
		out_row(&o, cols, "  ... %zu more", d->alarm_active - show);
	if (d->nalarms == 0)
		out_row(&o, cols, "  (all normal)");
	out_row(&o, cols, "%s", "");
	out_row(&o, cols, " %s", d->status);
	out_row(&o, cols,
		" Commands: sp VALUE | pump on|off | ack ID | quit   (Ctrl-C stops the plant)");
	out_raw(&o, "\x1b[J", 3);
	out_raw(&o, " > ", 3);
	out_raw(&o, d->input, d->input_len);
	out_raw(&o, "\x1b[K", 3);
	if (o.overflow)
		return -ENOBUFS;
	return (int)o.len;
}
