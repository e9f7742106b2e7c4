/* SPDX-License-Identifier: MIT */
/*
 * plant-ui: the operator dashboard of the demo plant, a sandboxed layer.
 *
 *   plant-ui [--tty PATH] [--commands PATH [--compromised]]
 *
 * It holds no privilege and no file: what it shows comes from tag.read,
 * tag.changed, alarm.list, alarm.raised and hist.query through the broker,
 * and what it does goes out as tag.write and alarm.ack, each decided by the
 * policy.  Its only way to the operator is an fd the broker passes through
 * an `open` resource of the policy:
 *  - interactive: the terminal (`--tty`, default /dev/tty, the broker's
 *    controlling terminal).  Then the screen is redrawn in place and the
 *    operator types commands (see uicmd.h).  Without a terminal it prints
 *    one plain line per event on stdout, which the broker logs.
 *  - scenario: `--commands PATH`, a regular file the launcher appends one
 *    command at a time to.  The ui reads it from its end at start-up, so a
 *    restarted ui never replays what an earlier one obeyed.
 * `--compromised` (a test switch only the scenario's rendered policy
 * passes) makes it obey `attack ...` commands: it then behaves like an
 * attacker with code execution in the ui, which the policy and the sandbox
 * must contain.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "conduit/conduit.h"
#include "dash.h"
#include "tags.h"
#include "uicmd.h"

#define CALL_TIMEOUT_MS	   5000
#define DRAW_PERIOD_MS	   200
#define ALARMS_PERIOD_MS   2000
#define TREND_PERIOD_MS	   5000
#define FILE_PERIOD_MS	   100
#define LINE_TAG_PERIOD_MS 5000 /* line mode: one line per measured value per 5 s */
#define LINE_TREND_MS	   30000

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

struct pending_write {
	struct ui *ui;
	char tag[UICMD_ARG_MAX + 1];
	double value;
	struct flood *flood; /* NULL for a single write */
};

struct flood {
	uint32_t total, done, ok, rate_limited, denied, other;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A message for the operator: the status row on the dashboard, or a line
 * on stdout (the broker's log) in line mode. */
__attribute__((format(printf, 2, 3))) static void ui_say(struct ui *ui, const char *fmt, ...)
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

static void value_line(struct ui *ui, size_t id)
{
	char buf[64];

	dash_format_value(&ui->dash, id, buf, sizeof(buf));
	printf("value %s %s\n", tags_get(id)->name, buf);
	ui->last_line[id] = now_ms();
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
	    now_ms() - ui->last_line[id] < LINE_TAG_PERIOD_MS)
		ui->line_pending[id] = true;
	else
		value_line(ui, id);
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
		    dash_set_trend(&ui->dash.trends[i], points, len, wall_ms()) == 0)
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

static int request_tag(struct ui *ui, size_t id)
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

static int request_alarms(struct ui *ui)
{
	cdt_msg *call = NULL;
	int r = call_new("alarm.list", &call);

	return r < 0 ? r : call_async_free(ui, call, on_alarms, ui);
}

static int request_trend(struct ui *ui, const struct dash_trend *t)
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

static int run_command(struct ui *ui, const char *line, size_t len)
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

/* Feed input bytes: complete lines run; Backspace edits on a terminal. */
static int feed_input(struct ui *ui, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = buf[i];
		if (ch == '\n' || ch == '\r') {
			int r = ui->line_long ? 0 : run_command(ui, ui->line, ui->line_len);
			ui->line_len = 0;
			ui->line_long = false;
			if (r < 0)
				return r;
		} else if (ui->tty && (ch == 0x7f || ch == '\b')) {
			if (ui->line_len > 0)
				ui->line_len--;
		} else if ((unsigned char)ch < 0x20 || (unsigned char)ch > 0x7e) {
			continue; /* commands are printable ASCII */
		} else if (ui->line_len < UICMD_LINE_MAX) {
			ui->line[ui->line_len++] = ch;
		} else {
			ui->line_long = true;
		}
		if (ui->tty) {
			memcpy(ui->dash.input, ui->line, ui->line_len);
			ui->dash.input_len = ui->line_len;
			ui->dirty = true;
		}
	}
	return 0;
}

static int read_input(struct ui *ui)
{
	char buf[512];
	ssize_t n = read(ui->in_fd, buf, sizeof(buf));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	if (n == 0 && ui->tty)
		return -EPIPE; /* the terminal hung up */
	return feed_input(ui, buf, (size_t)n);
}

/* Ask the broker for the fd of one of our policy's `open` resources. */
static int open_resource(struct ui *ui, const char *path, int *ret_fd)
{
	cdt_msg *call = NULL, *reply = NULL;
	int r = call_new("conduit.open", &call);

	if (r == 0)
		r = cdt_msg_add_string(call, "path", path, strlen(path));
	if (r == 0)
		r = cdt_layer_call(ui->layer, call, CALL_TIMEOUT_MS, &reply);
	if (r == -EREMOTEIO)
		fprintf(stderr, "plant-ui: conduit.open %s: %s\n", path,
			cdt_layer_error_name(ui->layer));
	if (r == 0)
		r = cdt_msg_take_fd(reply, "fd", ret_fd);
	cdt_msg_free(call);
	cdt_msg_free(reply);
	return r;
}

static void term_restore(struct ui *ui)
{
	static const char leave[] = "\x1b[?25h\x1b[?1049l";

	if (!ui->tty)
		return;
	if (write(ui->in_fd, leave, sizeof(leave) - 1) < 0) {
		/* Nothing more to do for a terminal that is gone. */
	}
	if (ui->saved_ok)
		(void)tcsetattr(ui->in_fd, TCSAFLUSH, &ui->saved);
	ui->tty = false;
}

/* The terminal in character mode: no echo, no line buffering; ISIG stays
 * on, so Ctrl-C still reaches the broker and the launcher, never the ui
 * (the sandbox put it in a session of its own). */
static int term_setup(struct ui *ui)
{
	static const char enter[] = "\x1b[?1049h\x1b[H\x1b[2J";
	struct termios t;

	if (tcgetattr(ui->in_fd, &ui->saved) < 0)
		return -errno;
	ui->saved_ok = true;
	t = ui->saved;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(ui->in_fd, TCSAFLUSH, &t) < 0)
		return -errno;
	ui->tty = true;
	if (write(ui->in_fd, enter, sizeof(enter) - 1) < 0)
		return -errno;
	return 0;
}

static int draw(struct ui *ui)
{
	static char screen[DASH_SCREEN_MAX];
	struct winsize ws = {0};
	int cols = ioctl(ui->in_fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col ? ws.ws_col : 80;
	int n = dash_render(&ui->dash, cols, screen, sizeof(screen));

	ui->dirty = false;
	if (n < 0)
		return 0; /* a screen too large to draw is skipped, not fatal */
	for (size_t off = 0; off < (size_t)n;) {
		ssize_t w = write(ui->in_fd, screen + off, (size_t)n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		off += (size_t)w;
	}
	return 0;
}

static int open_input(struct ui *ui, const char *tty_path, const char *cmd_path)
{
	int fd, r;

	if (cmd_path) {
		r = open_resource(ui, cmd_path, &fd);
		if (r < 0)
			return r;
		ui->in_fd = fd;
		/* Only what is appended from now on: a restarted ui must not obey
		 * again what its previous incarnation read. */
		off_t end = lseek(fd, 0, SEEK_END);
		if (end < 0)
			return -errno;
		printf("ready: commands from offset %lld\n", (long long)end);
		return 0;
	}
	r = open_resource(ui, tty_path, &fd);
	if (r < 0 || !isatty(fd)) {
		if (r == 0)
			close(fd);
		printf("ready: no terminal (%s): line mode, no commands\n",
		       r < 0 ? cdt_strerror(r) : "not a tty");
		return 0;
	}
	ui->in_fd = fd;
	r = term_setup(ui);
	if (r < 0)
		return r;
	printf("ready: dashboard on the terminal\n");
	return 0;
}

static void periodic(struct ui *ui, int64_t now)
{
	if (now >= ui->next_alarms) {
		(void)request_alarms(ui);
		ui->next_alarms = now + ALARMS_PERIOD_MS;
	}
	if (now >= ui->next_trend) {
		for (size_t i = 0; i < DASH_TRENDS; i++)
			(void)request_trend(ui, &ui->dash.trends[i]);
		ui->next_trend = now + TREND_PERIOD_MS;
	}
	if (!ui->tty) {
		for (size_t id = 0; id < TAG_COUNT; id++)
			if (ui->line_pending[id] && now - ui->last_line[id] >= LINE_TAG_PERIOD_MS)
				value_line(ui, id);
		if (now >= ui->next_trend_line) {
			for (size_t i = 0; i < DASH_TRENDS; i++) {
				const struct dash_trend *t = &ui->dash.trends[i];
				char line[DASH_TREND_W + 1];
				bool any = false;
				for (size_t c = 0; c < DASH_TREND_W; c++)
					any |= t->have[c];
				if (any && dash_sparkline(t->v, t->have, DASH_TREND_W, 0,
							  tags_get(t->tag)->eng_max, false, line,
							  sizeof(line)) >= 0)
					printf("trend %s %llus [%s]\n", tags_get(t->tag)->name,
					       (unsigned long long)t->window_s, line);
			}
			ui->next_trend_line = now + LINE_TREND_MS;
		}
	}
}

static int loop(struct ui *ui)
{
	int r;

	while (!ui->quit && !stop_signal) {
		int64_t now = now_ms(), deadline;
		periodic(ui, now);
		if (ui->in_fd >= 0 && !ui->tty && now >= ui->next_file) {
			/* A regular file is always "readable": look for appended lines on a timer.
			 */
			r = read_input(ui);
			if (r < 0)
				return r;
			ui->next_file = now + FILE_PERIOD_MS;
		}
		if (ui->tty && ui->dirty && now >= ui->next_draw) {
			r = draw(ui);
			if (r < 0)
				return r;
			ui->next_draw = now + DRAW_PERIOD_MS;
		}
		deadline = ui->next_alarms < ui->next_trend ? ui->next_alarms : ui->next_trend;
		if (ui->in_fd >= 0 && !ui->tty && ui->next_file < deadline)
			deadline = ui->next_file;
		if (ui->tty && ui->dirty && ui->next_draw < deadline)
			deadline = ui->next_draw;
		fflush(stdout);

		struct pollfd pfd[2] = {
			{.fd = cdt_layer_fd(ui->layer),
			 .events = POLLIN | (cdt_layer_want_write(ui->layer) ? POLLOUT : 0)},
			{.fd = ui->tty ? ui->in_fd : -1, .events = POLLIN},
		};
		int64_t wait = deadline > now ? deadline - now : 0;
		if (cdt_layer_want_dispatch(ui->layer))
			wait = 0;
		if (poll(pfd, 2, wait > INT_MAX ? INT_MAX : (int)wait) < 0 && errno != EINTR)
			return -errno;
		if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			r = read_input(ui);
			if (r < 0)
				return r;
		}
		r = cdt_layer_dispatch(ui->layer);
		if (r == -CDT_E_CLOSED)
			return 0;
		if (r < 0)
			return r;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct ui ui = {.in_fd = -1};
	const char *tty_path = "/dev/tty", *cmd_path = NULL, *lang = getenv("LANG");
	struct sigaction sa = {.sa_handler = on_signal};
	int r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--tty") == 0 && i + 1 < argc) {
			tty_path = argv[++i];
		} else if (strcmp(argv[i], "--commands") == 0 && i + 1 < argc) {
			cmd_path = argv[++i];
		} else if (strcmp(argv[i], "--compromised") == 0) {
			ui.compromised = true;
		} else {
			fprintf(stderr, "usage: plant-ui [--tty PATH] [--commands PATH "
					"[--compromised]]\n");
			return 2;
		}
	}
	if (ui.compromised && !cmd_path) {
		/* The switch exists for the scripted scenario only. */
		fprintf(stderr, "plant-ui: --compromised needs --commands\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* No SA_RESTART: poll() returns with EINTR and the loop sees the flag. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
	    sigaction(SIGHUP, &sa, NULL) < 0) {
		fprintf(stderr, "plant-ui: sigaction: %s\n", strerror(errno));
		return 1;
	}
	dash_init(&ui.dash, lang && (strstr(lang, "UTF-8") || strstr(lang, "utf8")),
		  ui.compromised);
	snprintf(ui.dash.status, sizeof(ui.dash.status), "connected");
	if ((r = cdt_init()) < 0 || (r = cdt_layer_open(NULL, &ui.layer)) < 0)
		goto out;
	if (ui.compromised)
		printf("COMPROMISED TEST SWITCH ON: obeying attack commands from %s\n", cmd_path);
	if ((r = cdt_layer_subscribe(ui.layer, "tag.changed", on_tag_changed, &ui)) < 0 ||
	    (r = cdt_layer_subscribe(ui.layer, "alarm.raised", on_alarm_raised, &ui)) < 0)
		goto out;
	/* Values published before we subscribed are read once. */
	for (size_t id = 0; id < TAG_COUNT; id++)
		if ((r = request_tag(&ui, id)) < 0)
			goto out;
	if ((r = open_input(&ui, tty_path, cmd_path)) < 0)
		goto out;
	r = loop(&ui);
	if (ui.quit)
		printf("operator quit\n");
	if (r == 0 && ui.quit) {
		r = cdt_layer_close(ui.layer);
		if (r == -EAGAIN || r == 0)
			r = 0;
	}
out:
	term_restore(&ui);
	if (r < 0)
		fprintf(stderr, "plant-ui: %s\n", cdt_strerror(r));
	if (stop_signal)
		printf("stopping on signal %d\n", (int)stop_signal);
	if (ui.in_fd >= 0)
		close(ui.in_fd);
	cdt_layer_free(ui.layer);
	return r < 0;
}
