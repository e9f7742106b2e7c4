/* SPDX-License-Identifier: MIT */
/* The ui layer's dashboard (examples/plant/dash.c): trends from hist.query
 * points, sparklines, alarm rows, the rendered screen. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dash.h"

static void put_point(uint8_t *p, uint64_t ts, double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	for (int i = 0; i < 8; i++) {
		p[i] = (uint8_t)(ts >> (8 * i));
		p[8 + i] = (uint8_t)(bits >> (8 * i));
	}
}

static void test_trend(void **state)
{
	struct dash d;
	uint8_t *pts = calloc(DASH_HIST_POINTS + 1, 16);
	const uint64_t now = 1000000000;

	(void)state;
	assert_non_null(pts);
	dash_init(&d, false, false);
	struct dash_trend *t = &d.trends[0];
	/* empty: every column missing */
	assert_int_equal(dash_set_trend(t, pts, 0, now), 0);
	for (size_t c = 0; c < DASH_TREND_W; c++)
		assert_false(t->have[c]);
	/* exactly DASH_HIST_POINTS points, one per 300/3600 s */
	for (size_t i = 0; i < DASH_HIST_POINTS; i++)
		put_point(pts + 16 * i, now - 300000 + i * 300000 / DASH_HIST_POINTS, (double)i);
	assert_int_equal(dash_set_trend(t, pts, 16 * DASH_HIST_POINTS, now), 0);
	for (size_t c = 0; c < DASH_TREND_W; c++)
		assert_true(t->have[c]);
	assert_true(t->v[0] < t->v[DASH_TREND_W - 1]);
	/* one more is refused, and so is a truncated record */
	assert_int_equal(dash_set_trend(t, pts, 16 * (DASH_HIST_POINTS + 1), now), -E2BIG);
	assert_int_equal(dash_set_trend(t, pts, 16 * 3 + 15, now), -EINVAL);
	/* points outside the window (older, or in the future) are ignored */
	put_point(pts, now - 400000, 1);
	put_point(pts + 16, now + 1, 1);
	put_point(pts + 32, now, 42);
	assert_int_equal(dash_set_trend(t, pts, 48, now), 0);
	assert_true(t->have[DASH_TREND_W - 1]);
	assert_true(t->v[DASH_TREND_W - 1] == 42);
	for (size_t c = 0; c + 1 < DASH_TREND_W; c++)
		assert_false(t->have[c]);
	/* a value holds until the next change: columns after a point are filled */
	put_point(pts, now - 300000, 5);
	put_point(pts + 16, now, 7);
	assert_int_equal(dash_set_trend(t, pts, 32, now), 0);
	for (size_t c = 0; c + 1 < DASH_TREND_W; c++)
		assert_true(t->have[c] && t->v[c] == 5);
	assert_true(t->v[DASH_TREND_W - 1] == 7);
	/* huge values in one column: the mean does not overflow to inf */
	put_point(pts, now, 1.7e308);
	put_point(pts + 16, now, 1.7e308);
	put_point(pts + 32, now, 1.7e308);
	assert_int_equal(dash_set_trend(t, pts, 48, now), 0);
	assert_true(t->have[DASH_TREND_W - 1]);
	assert_true(t->v[DASH_TREND_W - 1] > 1.6e308);
	free(pts);
}

static void test_sparkline(void **state)
{
	double v[4] = {0, 5, 10, 99};
	bool have[4] = {true, true, true, false};
	char buf[32];

	(void)state;
	assert_int_equal(dash_sparkline(v, have, 4, 0, 10, false, buf, sizeof(buf)), 4);
	assert_string_equal(buf, "_=# ");
	/* UTF-8 blocks: 3 bytes a column; the buffer at exactly the need, and one less */
	assert_int_equal(dash_sparkline(v, have, 3, 0, 10, true, buf, 10), 9);
	assert_memory_equal(buf, "\u2581", 3);
	assert_memory_equal(buf + 6, "\u2588", 3);
	assert_int_equal(dash_sparkline(v, have, 3, 0, 10, true, buf, 9), -ENOBUFS);
	/* a flat line (lo == hi) draws the lowest block */
	assert_int_equal(dash_sparkline(v, have, 1, 5, 5, false, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "_");
}

static void test_alarms(void **state)
{
	static const char list[] = "A1\tunack-active\thigh\tplant.tank.level\t4600\tlevel high\n"
				   "A2\tack-active\tlow\tplant.water.ph\t6.1\tpH \x1b[2Jlow\n";
	struct dash d;

	(void)state;
	dash_init(&d, false, false);
	assert_int_equal(dash_set_alarms(&d, 2, list, sizeof(list) - 1), 0);
	assert_int_equal(d.nalarms, 2);
	assert_non_null(strstr(d.alarms[0], "unack-active"));
	assert_non_null(strstr(d.alarms[0], "level high"));
	/* another layer's bytes never reach the terminal as an escape */
	assert_null(strchr(d.alarms[1], 0x1b));
	/* a line missing fields is refused and the rows stay */
	assert_int_equal(dash_set_alarms(&d, 1, "A3\tnormal\n", 10), -EINVAL);
	assert_int_equal(d.nalarms, 2);
	/* empty list */
	assert_int_equal(dash_set_alarms(&d, 0, "", 0), 0);
	assert_int_equal(d.nalarms, 0);
}

static void test_alarms_max(void **state)
{
	char text[4096];
	size_t len = 0;
	struct dash d;

	(void)state;
	dash_init(&d, false, false);
	for (int i = 0; i < DASH_ALARMS_MAX + 1; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
					"A%d\tunack-rtn\tlow\tt\t1\tm\n", i);
	assert_int_equal(dash_set_alarms(&d, DASH_ALARMS_MAX + 1, text, len), 0);
	assert_int_equal(d.nalarms, DASH_ALARMS_MAX);
	assert_int_equal(d.alarm_active, DASH_ALARMS_MAX + 1);
	assert_int_equal(d.alarm_count, DASH_ALARMS_MAX + 1);
	/* the screen never has more rows than the terminal: the alarm rows
	 * shrink, the last saying how many are left out */
	static char screen[DASH_SCREEN_MAX];
	for (int rows = 10; rows <= 40; rows++) {
		assert_true(dash_render(&d, 80, rows, screen, sizeof(screen)) > 0);
		size_t lines = 1;
		for (const char *c = screen; (c = strchr(c, '\n')); c++)
			lines++;
		size_t want = DASH_FIXED_ROWS +
			      (rows > DASH_FIXED_ROWS ? (size_t)(rows - DASH_FIXED_ROWS) : 1);
		if (want > DASH_FIXED_ROWS + DASH_ALARMS_MAX + 1)
			want = DASH_FIXED_ROWS + DASH_ALARMS_MAX + 1;
		assert_int_equal(lines, want);
		assert_non_null(strstr(screen, " more"));
	}
	assert_true(dash_render(&d, 80, 20, screen, sizeof(screen)) > 0);
	assert_non_null(strstr(screen, "... 6 more")); /* 4 alarm rows: 3 shown, then the count */
	/* alarms in normal are counted, not shown */
	assert_int_equal(dash_set_alarms(&d, 3, "N\tnormal\tlow\tt\t1\tm\n", 19), 0);
	assert_int_equal(d.nalarms, 0);
	assert_int_equal(d.alarm_active, 0);
	assert_int_equal(d.alarm_count, 3);
}

static void test_render(void **state)
{
	static char screen[DASH_SCREEN_MAX];
	struct dash d;
	int n;

	(void)state;
	dash_init(&d, true, true);
	d.tags[TAG_NAOH_SP] = (struct dash_value){.have = true, .v = 110};
	d.tags[TAG_PH] = (struct dash_value){.have = true, .stale = true, .v = 7.25};
	memcpy(d.input, "sp 1", 4);
	d.input_len = 4;
	n = dash_render(&d, 100, 24, screen, sizeof(screen));
	assert_true(n > 0 && (size_t)n < sizeof(screen));
	assert_int_equal(strlen(screen), (size_t)n);
	assert_non_null(strstr(screen, "110 ppm"));
	assert_non_null(strstr(screen, "7.25 pH (stale)"));
	assert_non_null(strstr(screen, "COMPROMISED"));
	assert_non_null(strstr(screen, " > sp 1"));
	assert_int_equal(dash_render(&d, 100, 24, screen, 64), -ENOBUFS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trend),  cmocka_unit_test(test_sparkline),
		cmocka_unit_test(test_alarms), cmocka_unit_test(test_alarms_max),
		cmocka_unit_test(test_render),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
