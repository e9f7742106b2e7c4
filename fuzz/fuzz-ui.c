/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the ui layer's parsers of input it does not control: command lines
 * (from the operator's terminal or the scenario's command file), the
 * alarm.list text another layer sends, and hist.query's point records.
 * Input: one selector byte, then the payload.  Checks: a parsed command
 * is consistent (a flood count in 1..UICMD_FLOOD_MAX, a NUL-terminated
 * argument that fits, an attack only with the switch on); alarm rows never
 * carry a control byte (they go to a terminal); a trend's columns are finite;
 * the rendered screen fits its buffer and is NUL-terminated at its length.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dash.h"
#include "uicmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dash d;
static char screen[DASH_SCREEN_MAX];

static void check_command(const uint8_t *p, size_t n, bool attacks)
{
	struct uicmd c;
	int r = uicmd_parse((const char *)p, n, attacks, &c);

	if (r != 0)
		return;
	if (memchr(c.arg, '\0', sizeof(c.arg)) == NULL)
		abort();
	if (c.kind >= UICMD_ATTACK_WRITE && !attacks)
		abort();
	if (c.kind == UICMD_ATTACK_FLOOD && (c.count < 1 || c.count > UICMD_FLOOD_MAX))
		abort();
	if ((c.kind == UICMD_SETPOINT || c.kind == UICMD_ATTACK_WRITE) && !isfinite(c.value))
		abort();
	if (c.kind == UICMD_ATTACK_CONNECT && c.port == 0)
		abort();
}

static void check_screen(void)
{
	int n = dash_render(&d, 100, 10 + (int)(d.alarm_count % 20), screen, sizeof(screen));
	if (n >= 0 && ((size_t)n >= sizeof(screen) || strlen(screen) != (size_t)n))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t sel = data[0];
	const uint8_t *p = data + 1;
	size_t n = size - 1;

	dash_init(&d, sel & 0x10, sel & 0x20);
	switch (sel & 3) {
	case 0:
		check_command(p, n, sel & 4);
		break;
	case 1:
		if (dash_set_alarms(&d, n, (const char *)p, n) == 0) {
			for (size_t i = 0; i < d.nalarms; i++)
				for (const char *c = d.alarms[i]; *c; c++)
					if ((unsigned char)*c < 0x20 || *c == 0x7f)
						abort();
			check_screen();
		}
		break;
	default:
		if (n >= 8) {
			uint64_t now = 0;
			memcpy(&now, p, 8);
			if (dash_set_trend(&d.trends[0], p + 8, n - 8, now) == 0) {
				for (size_t c = 0; c < DASH_TREND_W; c++)
					if (d.trends[0].have[c] && !isfinite(d.trends[0].v[c]))
						abort();
				check_screen();
			}
		}
		break;
	}
	return 0;
}
