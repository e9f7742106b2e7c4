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
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "ui.h"

#define DRAW_PERIOD_MS	 200
#define ALARMS_PERIOD_MS 2000
#define TREND_PERIOD_MS	 5000
#define FILE_PERIOD_MS	 100
#define LINE_TREND_MS	 30000

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

/* Feed input bytes: complete lines run; Backspace edits on a terminal. */
static int feed_input(struct ui *ui, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = buf[i];
		if (ch == '\n' || ch == '\r') {
			int r = ui->line_long ? 0 : ui_run_command(ui, ui->line, ui->line_len);
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
	/* call_id 1 is a placeholder: the library picks the real one. */
	int r = cdt_msg_new(CDT_KIND_CALL, 1, "conduit.open", &call);

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
	bool have = ioctl(ui->in_fd, TIOCGWINSZ, &ws) == 0;
	int cols = have && ws.ws_col ? ws.ws_col : 80;
	int rows = have && ws.ws_row ? ws.ws_row : 24;
	int n = dash_render(&ui->dash, cols, rows, screen, sizeof(screen));

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
		(void)ui_request_alarms(ui);
		ui->next_alarms = now + ALARMS_PERIOD_MS;
	}
	if (now >= ui->next_trend) {
		for (size_t i = 0; i < DASH_TRENDS; i++)
			(void)ui_request_trend(ui, &ui->dash.trends[i]);
		ui->next_trend = now + TREND_PERIOD_MS;
	}
	if (!ui->tty) {
		for (size_t id = 0; id < TAG_COUNT; id++)
			if (ui->line_pending[id] && now - ui->last_line[id] >= LINE_TAG_PERIOD_MS)
				ui_value_line(ui, id);
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
		int64_t now = ui_now_ms(), deadline;
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
	if ((r = ui_subscribe(&ui)) < 0)
		goto out;
	/* Values published before we subscribed are read once. */
	for (size_t id = 0; id < TAG_COUNT; id++)
		if ((r = ui_request_tag(&ui, id)) < 0)
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
