/* SPDX-License-Identifier: MIT */
/* The ui layer's state and what its two halves share: layer-ui.c runs the
 * session, the terminal or command file and the loop; ui-calls.c makes
 * the calls, handles the events and runs the operator's commands. */
#ifndef PLANT_UI_H
#define PLANT_UI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#include "conduit/conduit.h"
#include "dash.h"
#include "tags.h"
#include "uicmd.h"

#define CALL_TIMEOUT_MS	   5000
#define LINE_TAG_PERIOD_MS 5000 /* line mode: one line per measured value per 5 s */

struct ui {
	cdt_layer *layer;
	struct dash dash;
	bool compromised;
	bool tty;  /* in_fd is the operator's terminal: ANSI dashboard */
	int in_fd; /* terminal or command file; -1 for none */
	struct termios saved;
	bool saved_ok;
	char line[UICMD_LINE_MAX + 1];
	size_t line_len;
	bool line_long; /* the current line overflowed: drop it at its newline */
	bool dirty, quit;
	int64_t next_draw, next_alarms, next_trend, next_file, next_trend_line;
	int64_t last_line[TAG_COUNT];
	bool line_pending[TAG_COUNT];
};

/* CLOCK_MONOTONIC and CLOCK_REALTIME in milliseconds. */
int64_t ui_now_ms(void);
uint64_t ui_wall_ms(void);

/* A message for the operator: the status row on the dashboard, or a line
 * on stdout (the broker's log) in line mode. */
__attribute__((format(printf, 2, 3))) void ui_say(struct ui *ui, const char *fmt, ...);

/* Line mode: print tag id's current value now. */
void ui_value_line(struct ui *ui, size_t id);

/* Subscribe to tag.changed and alarm.raised. */
int ui_subscribe(struct ui *ui);

/* Asynchronous calls whose answers update the dashboard. */
int ui_request_tag(struct ui *ui, size_t id);
int ui_request_alarms(struct ui *ui);
int ui_request_trend(struct ui *ui, const struct dash_trend *t);

/* Run one command line (uicmd.h) of len bytes.  Errors: a failure to make
 * a call that leaves the session unusable. */
int ui_run_command(struct ui *ui, const char *line, size_t len);

#endif
