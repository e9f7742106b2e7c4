/* SPDX-License-Identifier: MIT */
/* The ui layer's calls and events: what it asks the other layers through
 * the broker, what it does with the answers, and the operator's (or, with
 * the test switch, the attacker's) commands. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ui.h"

struct pending_write {
	struct ui *ui;
	char tag[UICMD_ARG_MAX + 1];
	double value;
	struct flood *flood; /* NULL for a single write */
};

struct flood {
	uint32_t total, done, ok, rate_limited, denied, other;
};

int64_t ui_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t ui_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A message for the operator: the status row on the dashboard, or a line
 * on stdout (the broker's log) in line mode. */
__attribute__((format(printf, 2, 3))) void ui_say(struct ui *ui, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (ui->tty) {
		vsnprintf(ui->dash.status, sizeof(ui->dash.status), fmt, ap);
		ui->dirty = true;
	} else {
		vprintf(fmt, ap);
		putchar('\n');
	}
	va_end(ap);
}

/* A number argument sent as double, i64 or u64 (the contract allows all three). */
static int get_number(const cdt_msg *m, const char *name, double *ret)
{
	struct cdt_arg a;
	int r = cdt_msg_find(m, name, &a);

	if (r < 0)
		return r;
	switch (a.type) {
	case CDT_TYPE_DOUBLE:
		*ret = a.v.d;
		return 0;
	case CDT_TYPE_I64:
		*ret = (double)a.v.i64;
		return 0;
	case CDT_TYPE_U64:
		*ret = (double)a.v.u64;
		return 0;
	default:
		return -EMEDIUMTYPE;
	}
}

static int find_tag(const cdt_msg *m, size_t *ret_id)
{
	const char *tag;
	size_t len;
	int r = cdt_msg_get_string(m, "tag", &tag, &len);

	return r < 0 ? r : tags_find(tag, len, ret_id);
}

void ui_value_line(struct ui *ui, size_t id)
{
	char buf[64];

	dash_format_value(&ui->dash, id, buf, sizeof(buf));
	printf("value %s %s\n", tags_get(id)->name, buf);
	ui->last_line[id] = ui_now_ms();
	ui->line_pending[id] = false;
}

/* Measured values change every poll: in line mode each gets a line at
 * most every LINE_TAG_PERIOD_MS (the latest value); settings and bits,
 * which change only when someone acts, get one per change. */
static void value_changed(struct ui *ui, size_t id, double v, bool stale)
{
	const struct tag_def *def = tags_get(id);
	bool changed = !ui->dash.tags[id].have || ui->dash.tags[id].v != v ||
		       ui->dash.tags[id].stale != stale;

	ui->dash.tags[id] = (struct dash_value){.have = true, .stale = stale, .v = v};
	ui->dirty = true;
	if (ui->tty || !changed)
		return;
	if (def->readonly && def->type != TAG_TYPE_BOOL &&
	    ui_now_ms() - ui->last_line[id] < LINE_TAG_PERIOD_MS)
		ui->line_pending[id] = true;
	else
		ui_value_line(ui, id);
}

static void on_tag_changed(cdt_layer *layer, const cdt_msg *ev, void *userdata)
{
	struct ui *ui = userdata;
	size_t id;
	double v;

	(void)layer;
	if (find_tag(ev, &id) < 0 || get_number(ev, "value", &v) < 0)
		return;
	value_changed(ui, id, v, false);
}

static void on_tag_read(cdt_layer *layer, int result, cdt_msg *reply, void *userdata)
{
	struct ui *ui = userdata;
	const char *quality;
	size_t id;
	double v;

	(void)layer;
	if (result < 0 || find_tag(reply, &id) < 0 || get_number(reply, "value", &v) < 0)
		return;
	if (cdt_msg_get_string(reply, "quality", &quality, NULL) < 0)
		quality = "good";
	value_changed(ui, id, v, strcmp(quality, "good") != 0);
}

static void on_alarms(cdt_layer *layer, int result, cdt_msg *reply, void *userdata)
{
	struct ui *ui = userdata;
	const char *text;
	size_t len;
	uint64_t count;

	(void)layer;
	if (result < 0 || cdt_msg_get_u64(reply, "count", &count) < 0 ||
	    cdt_msg_get_string(reply, "alarms", &text, &len) < 0)
		return;
	if (dash_set_alarms(&ui->dash, count, text, len) == 0)
		ui->dirty = true;
}

static void on_alarm_raised(cdt_layer *layer, const cdt_msg *ev, void *userdata)
{
	struct ui *ui = userdata;
	const char *id, *state, *prio, *tag, *message;
	char row[DASH_ALARM_LEN];
	double v;

	(void)layer;
	if (cdt_msg_get_string(ev, "id", &id, NULL) < 0 ||
	    cdt_msg_get_string(ev, "state", &state, NULL) < 0 ||
	    cdt_msg_get_string(ev, "priority", &prio, NULL) < 0 ||
	    cdt_msg_get_string(ev, "tag", &tag, NULL) < 0 || get_number(ev, "value", &v) < 0 ||
	    cdt_msg_get_string(ev, "message", &message, NULL) < 0)
		return;
	dash_format_alarm(id, state, prio, tag, v, message, row, sizeof(row));
	if (!ui->tty)
		printf("alarm %s\n", row);
	ui->next_alarms = 0; /* refresh the list now */
}

static void on_trend(cdt_layer *layer, int result, cdt_msg *reply, void *userdata)
{
	struct ui *ui = userdata;
	const uint8_t *points;
	size_t len, id;

	(void)layer;
	if (result < 0 || find_tag(reply, &id) < 0 ||
	    cdt_msg_get_bytes(reply, "points", &points, &len) < 0)
		return;
	for (size_t i = 0; i < DASH_TRENDS; i++) {
		if (ui->dash.trends[i].tag == id &&
		    dash_set_trend(&ui->dash.trends[i], points, len, ui_wall_ms()) == 0)
			ui->dirty = true;
	}
}

/* Build a CALL (call_id 1 is a placeholder: the library picks the real one). */
static int call_new(const char *method, cdt_msg **ret)
{
	return cdt_msg_new(CDT_KIND_CALL, 1, method, ret);
}

static int call_async_free(struct ui *ui, cdt_msg *call, cdt_layer_reply_fn cb, void *data)
{
	int r = cdt_layer_call_async(ui->layer, call, cb, data);
	cdt_msg_free(call);
	return r;
}

int ui_request_tag(struct ui *ui, size_t id)
{
	const char *name = tags_get(id)->name;
	cdt_msg *call = NULL;
	int r = call_new("tag.read", &call);

	if (r == 0)
		r = cdt_msg_add_string(call, "tag", name, strlen(name));
	if (r < 0) {
		cdt_msg_free(call);
		return r;
	}
	return call_async_free(ui, call, on_tag_read, ui);
}

int ui_request_alarms(struct ui *ui)
{
	cdt_msg *call = NULL;
	int r = call_new("alarm.list", &call);

	return r < 0 ? r : call_async_free(ui, call, on_alarms, ui);
}

int ui_request_trend(struct ui *ui, const struct dash_trend *t)
{
	const char *name = tags_get(t->tag)->name;
	cdt_msg *call = NULL;
	int r = call_new("hist.query", &call);

	if (r == 0)
		r = cdt_msg_add_string(call, "tag", name, strlen(name));
	if (r == 0)
		r = cdt_msg_add_u64(call, "seconds", t->window_s);
	if (r < 0) {
		cdt_msg_free(call);
		return r;
	}
	return call_async_free(ui, call, on_trend, ui);
}

static void flood_done(struct ui *ui, struct flood *f)
{
	if (++f->done < f->total)
		return;
	ui_say(ui,
	       "attacker: flood of %u writes done: %u allowed, %u rate-limited, %u denied, "
	       "%u failed",
	       f->total, f->ok, f->rate_limited, f->denied, f->other);
	free(f);
}

static void on_written(cdt_layer *layer, int result, cdt_msg *reply, void *userdata)
{
	struct pending_write *w = userdata;
	struct ui *ui = w->ui;
	const char *err = result == -EREMOTEIO ? cdt_msg_name(reply) : cdt_strerror(result);
	double back;

	(void)layer;
	if (w->flood) {
		struct flood *f = w->flood;
		if (result == 0)
			f->ok++;
		else if (result == -EREMOTEIO && strcmp(err, "conduit.rate_limited") == 0)
			f->rate_limited++;
		else if (result == -EREMOTEIO && strcmp(err, "conduit.denied") == 0)
			f->denied++;
		else
			f->other++;
		flood_done(ui, f);
	} else if (result == 0) {
		if (get_number(reply, "value", &back) < 0)
			back = NAN;
		ui_say(ui, "write %s = %g: done (read back %g)", w->tag, w->value, back);
	} else {
		ui_say(ui, "write %s = %g: refused: %s", w->tag, w->value, err);
	}
	free(w);
}

static int send_write(struct ui *ui, const char *tag, double value, struct flood *flood)
{
	struct pending_write *w = calloc(1, sizeof(*w));
	cdt_msg *call = NULL;
	int r;

	if (!w)
		return -ENOMEM;
	*w = (struct pending_write){.ui = ui, .value = value, .flood = flood};
	snprintf(w->tag, sizeof(w->tag), "%s", tag);
	r = call_new("tag.write", &call);
	if (r == 0)
		r = cdt_msg_add_string(call, "tag", tag, strlen(tag));
	/* Whole numbers go as i64, so the audit log shows "v":110 rather than a
	 * hex float; the policy compares numbers exactly across types. */
	if (r == 0 && value == trunc(value) && fabs(value) <= 9007199254740992.0)
		r = cdt_msg_add_i64(call, "value", (int64_t)value);
	else if (r == 0)
		r = cdt_msg_add_double(call, "value", value);
	if (r == 0)
		r = cdt_layer_call_async(ui->layer, call, on_written, w);
	cdt_msg_free(call);
	if (r < 0)
		free(w); /* the callback never runs after an error */
	return r;
}

static void on_acked(cdt_layer *layer, int result, cdt_msg *reply, void *userdata)
{
	struct ui *ui = userdata;

	(void)layer;
	if (result == 0)
		ui_say(ui, "alarm acknowledged");
	else
		ui_say(ui, "ack refused: %s",
		       result == -EREMOTEIO ? cdt_msg_name(reply) : cdt_strerror(result));
	ui->next_alarms = 0;
}

static int send_ack(struct ui *ui, const char *id)
{
	cdt_msg *call = NULL;
	int r = call_new("alarm.ack", &call);

	if (r == 0)
		r = cdt_msg_add_string(call, "id", id, strlen(id));
	if (r < 0) {
		cdt_msg_free(call);
		return r;
	}
	return call_async_free(ui, call, on_acked, ui);
}

/* The attack the sandbox, not the policy, must stop: the ui asks the
 * kernel for a socket to reach the PLC without the broker.  seccomp kills
 * the process at socket(); the lines after it only run outside a sandbox. */
static void attack_connect(struct ui *ui, uint32_t addr, uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd;

	sa.sin_addr.s_addr = htonl(addr);
	printf("attacker: socket() + connect() to the PLC directly\n");
	fflush(stdout);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ui_say(ui, "attacker: socket: %s", strerror(errno));
		return;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		ui_say(ui, "attacker: connect: %s", strerror(errno));
	else
		ui_say(ui, "attacker: connected to the PLC: the sandbox did not stop it");
	close(fd);
}

int ui_run_command(struct ui *ui, const char *line, size_t len)
{
	struct uicmd c;
	const struct tag_def *sp = tags_get(TAG_NAOH_SP);
	int r = uicmd_parse(line, len, ui->compromised, &c);

	if (r == -ENODATA)
		return 0;
	if (!ui->tty)
		printf("command: %.*s\n", (int)len, line);
	if (r < 0) {
		ui_say(ui, "%s: try sp VALUE, pump on|off, ack ID, quit",
		       r == -EPERM ? "not allowed" : "not a command");
		return 0;
	}
	switch (c.kind) {
	case UICMD_SETPOINT:
		/* The ui's own check is for the operator's sake: the policy and the
		 * io layer check again whatever the ui does. */
		if (!tags_in_range(sp, c.value)) {
			ui_say(ui, "setpoint %g outside %g..%g %s", c.value, sp->eng_min,
			       sp->eng_max, sp->unit);
			return 0;
		}
		return send_write(ui, sp->name, c.value, NULL);
	case UICMD_PUMP:
		return send_write(ui, tags_get(TAG_PUMP_RUN)->name, c.on ? 1 : 0, NULL);
	case UICMD_ACK:
		return send_ack(ui, c.arg);
	case UICMD_HELP:
		ui_say(ui, "sp VALUE (ppm) | pump on|off | ack ID | quit");
		return 0;
	case UICMD_QUIT:
		ui->quit = true;
		return 0;
	case UICMD_ATTACK_WRITE:
		ui_say(ui, "attacker: tag.write %s = %g", c.arg, c.value);
		return send_write(ui, c.arg, c.value, NULL);
	case UICMD_ATTACK_CONNECT:
		attack_connect(ui, c.addr, c.port);
		return 0;
	case UICMD_ATTACK_FLOOD: {
		struct flood *f = calloc(1, sizeof(*f));
		if (!f)
			return -ENOMEM;
		f->total = c.count;
		ui_say(ui, "attacker: flooding %u x tag.write %s = %g", c.count, c.arg, c.value);
		for (uint32_t i = 0; i < c.count; i++) {
			r = send_write(ui, c.arg, c.value, f);
			if (r < 0) {
				/* Count what could not even be sent as failed. */
				f->other += c.count - i - 1;
				f->done += c.count - i - 1;
				f->other++;
				flood_done(ui, f);
				if (r != -EBUSY && r != -ENOBUFS)
					return r;
				break;
			}
		}
		return 0;
	}
	}
	return 0;
}

int ui_subscribe(struct ui *ui)
{
	int r = cdt_layer_subscribe(ui->layer, "tag.changed", on_tag_changed, ui);

	return r < 0 ? r : cdt_layer_subscribe(ui->layer, "alarm.raised", on_alarm_raised, ui);
}
