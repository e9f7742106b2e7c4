/* SPDX-License-Identifier: MIT */
/*
 * plant-ui-probe: the `ui` layer of tests/test-plant-layers.c.  It drives
 * the plant's io, alarm and hist layers through the broker the way the
 * dashboard will, and reports what it saw as "RESULT ..." lines on stderr,
 * which the broker logs under the layer's name and the test reads back.
 * Built static and without sanitizers: it runs sandboxed under a dynamic uid.
 *
 * Script: read tags; write the setpoint 110 and read it back; writes io must
 * refuse on its own (range, readonly, unknown, a coil at 0.5) and one the
 * policy denies; drive the NaOH high alarm with a setpoint of 200, list it,
 * acknowledge it; query history; then report "phase1-done" and watch the
 * tag quality while the test kills and restarts the PLC: "stale", then
 * "good-again" and a write that works again.
 *
 *   plant-ui-probe [idle]      idle: keep the session and do nothing
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "layer-util.h"
#include "tags.h"

#define CALL_MS	 5000
#define HI_ALARM "plant.dosing.naoh_conc.hi"

static cdt_layer *L;
static bool seen[TAG_COUNT];
static size_t events, events_mark;
static bool seen_since_mark[TAG_COUNT];
static char hi_state[32];

static void result(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void result(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "RESULT %s\n", line);
}

static void on_changed(cdt_layer *layer, const cdt_msg *ev, void *userdata)
{
	const char *name;
	size_t len, id;
	uint64_t ts;
	double v;

	(void)layer;
	(void)userdata;
	if (cdt_msg_get_string(ev, "tag", &name, &len) < 0 || tags_find(name, len, &id) < 0 ||
	    lu_get_number(ev, "value", &v) < 0 || cdt_msg_get_u64(ev, "ts_ms", &ts) < 0) {
		result("bad tag.changed");
		return;
	}
	seen[id] = seen_since_mark[id] = true;
	events++;
}

static void on_alarm(cdt_layer *layer, const cdt_msg *ev, void *userdata)
{
	const char *id, *state, *prio, *tag, *msg;
	double v;

	(void)layer;
	(void)userdata;
	if (cdt_msg_get_string(ev, "id", &id, NULL) < 0 ||
	    cdt_msg_get_string(ev, "state", &state, NULL) < 0 ||
	    cdt_msg_get_string(ev, "priority", &prio, NULL) < 0 ||
	    cdt_msg_get_string(ev, "tag", &tag, NULL) < 0 ||
	    cdt_msg_get_string(ev, "message", &msg, NULL) < 0 ||
	    cdt_msg_get_double(ev, "value", &v) < 0) {
		result("bad alarm.raised");
		return;
	}
	result("alarm.raised %s %s %s %s", id, state, prio, tag);
	if (strcmp(id, HI_ALARM) == 0)
		snprintf(hi_state, sizeof(hi_state), "%s", state);
}

/* Dispatch events for @ms milliseconds (or until @until becomes true). */
static int pump(int ms, bool (*until)(void))
{
	int64_t end = lu_mono_ms() + ms;

	for (;;) {
		int64_t left = end - lu_mono_ms();
		struct pollfd p = {.fd = cdt_layer_fd(L),
				   .events = POLLIN | (cdt_layer_want_write(L) ? POLLOUT : 0)};
		int r;

		if (until && until())
			return 0;
		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&p, 1, cdt_layer_want_dispatch(L) ? 0 : (int)(left > 50 ? 50 : left)) <
			    0 &&
		    errno != EINTR)
			return -errno;
		r = cdt_layer_dispatch(L);
		if (r < 0)
			return r;
	}
}

static cdt_msg *new_call(const char *method)
{
	cdt_msg *m = NULL;

	if (cdt_msg_new(CDT_KIND_CALL, 1, method, &m) < 0)
		return NULL;
	return m;
}

static int add_str(cdt_msg *m, const char *name, const char *s)
{
	return cdt_msg_add_string(m, name, s, strlen(s));
}

/* Call and return 0 with the reply, or -EREMOTEIO and the error name. */
static int call(cdt_msg *m, cdt_msg **ret, const char **ret_err)
{
	int r = cdt_layer_call(L, m, CALL_MS, ret);

	cdt_msg_free(m);
	*ret_err = r == -EREMOTEIO ? cdt_layer_error_name(L) : cdt_strerror(r);
	return r;
}

/* tag.read: prints "read TAG VALUE QUALITY" or "read TAG error NAME". */
static int tag_read(const char *tag, double *ret_v, const char **ret_q, bool quiet)
{
	static char quality[16];
	cdt_msg *m = new_call("tag.read"), *reply = NULL;
	const char *err, *q;
	uint64_t ts;
	double v;
	int r;

	if (!m || add_str(m, "tag", tag) < 0)
		return -ENOMEM;
	r = call(m, &reply, &err);
	if (r < 0) {
		if (!quiet)
			result("read %s error %s", tag, err);
		return r;
	}
	if (lu_get_number(reply, "value", &v) < 0 || cdt_msg_get_u64(reply, "ts_ms", &ts) < 0 ||
	    cdt_msg_get_string(reply, "quality", &q, NULL) < 0 || ts == 0) {
		result("read %s malformed", tag);
		cdt_msg_free(reply);
		return -EBADMSG;
	}
	snprintf(quality, sizeof(quality), "%s", q);
	cdt_msg_free(reply);
	if (!quiet)
		result("read %s %g %s", tag, v, quality);
	*ret_v = v;
	*ret_q = quality;
	return 0;
}

/* tag.write with the value as i64 ('i'), u64 ('u', shown "V(u)") or double
 * ('d', "V(d)"): "write TAG V -> READBACK" or "write TAG V error NAME". */
static int tag_write(const char *tag, double v, char type)
{
	const char *suffix = type == 'u' ? "(u)" : type == 'd' ? "(d)" : "";
	cdt_msg *m = new_call("tag.write"), *reply = NULL;
	const char *err;
	double back;
	int r;

	if (!m || add_str(m, "tag", tag) < 0)
		return -ENOMEM;
	if ((type == 'd'   ? cdt_msg_add_double(m, "value", v)
	     : type == 'u' ? cdt_msg_add_u64(m, "value", (uint64_t)v)
			   : cdt_msg_add_i64(m, "value", (int64_t)v)) < 0)
		return -ENOMEM;
	r = call(m, &reply, &err);
	if (r < 0) {
		result("write %s %g%s error %s", tag, v, suffix, err);
		return r;
	}
	if (lu_get_number(reply, "value", &back) < 0)
		result("write %s %g malformed", tag, v);
	else
		result("write %s %g%s -> %g", tag, v, suffix, back);
	cdt_msg_free(reply);
	return 0;
}

static bool hi_unack(void)
{
	return strcmp(hi_state, "unack-active") == 0;
}

static bool hi_acked(void)
{
	return strcmp(hi_state, "ack-active") == 0;
}

static void alarms(void)
{
	cdt_msg *m = new_call("alarm.list"), *reply = NULL;
	const char *err, *text;
	uint64_t count;
	char want[128];

	if (!m || call(m, &reply, &err) < 0) {
		result("alarm.list error %s", m ? err : "nomem");
		return;
	}
	snprintf(want, sizeof(want), "%s\tunack-active\tmedium\tplant.dosing.naoh_conc\t",
		 HI_ALARM);
	if (cdt_msg_get_u64(reply, "count", &count) == 0 &&
	    cdt_msg_get_string(reply, "alarms", &text, NULL) == 0) {
		size_t lines = 0;
		for (const char *p = text; *p; p++)
			lines += *p == '\n';
		result("alarm.list count %llu lines %zu hi-listed %s", (unsigned long long)count,
		       lines, strstr(text, want) ? "yes" : "no");
	}
	cdt_msg_free(reply);
}

static void ack(const char *id)
{
	cdt_msg *m = new_call("alarm.ack"), *reply = NULL;
	const char *err;

	if (!m || add_str(m, "id", id) < 0)
		return;
	if (call(m, &reply, &err) < 0)
		result("alarm.ack %s error %s", id, err);
	else
		result("alarm.ack %s ok", id);
	cdt_msg_free(reply);
}

static void query(const char *tag, uint64_t seconds)
{
	cdt_msg *m = new_call("hist.query"), *reply = NULL;
	const uint8_t *pts;
	const char *err;
	uint64_t count, prev = 0;
	size_t len;
	bool ordered = true, has110 = false;

	if (!m || add_str(m, "tag", tag) < 0 || cdt_msg_add_u64(m, "seconds", seconds) < 0)
		return;
	if (call(m, &reply, &err) < 0) {
		result("hist.query %s %llu error %s", tag, (unsigned long long)seconds, err);
		return;
	}
	if (cdt_msg_get_u64(reply, "count", &count) < 0 ||
	    cdt_msg_get_bytes(reply, "points", &pts, &len) < 0 || len != count * 16) {
		result("hist.query %s malformed", tag);
		cdt_msg_free(reply);
		return;
	}
	for (size_t i = 0; i < count; i++) {
		uint64_t ts = 0, bits = 0;
		double v;
		for (int b = 7; b >= 0; b--) {
			ts = ts << 8 | pts[16 * i + (size_t)b];
			bits = bits << 8 | pts[16 * i + 8 + (size_t)b];
		}
		memcpy(&v, &bits, sizeof(v));
		ordered &= ts >= prev;
		prev = ts;
		has110 |= v == 110.0;
	}
	result("hist.query %s %llu count-ok %s ordered %s has110 %s", tag,
	       (unsigned long long)seconds, count >= 2 ? "yes" : "no", ordered ? "yes" : "no",
	       has110 ? "yes" : "no");
	cdt_msg_free(reply);
}

static size_t count_seen(const bool *s)
{
	size_t n = 0;

	for (size_t i = 0; i < TAG_COUNT; i++)
		n += s[i];
	return n;
}

static int watch_quality(void)
{
	const char *q = NULL;
	double v;
	bool stale = false;

	/* Bounded: the test restarts the PLC within seconds. */
	for (int i = 0; i < 200; i++) {
		int r = tag_read("plant.tank.level", &v, &q, true);
		if (r == 0 && !stale && strcmp(q, "stale") == 0) {
			stale = true;
			result("quality stale");
			memset(seen_since_mark, 0, sizeof(seen_since_mark));
			events_mark = events;
		} else if (r == 0 && stale && strcmp(q, "good") == 0) {
			result("quality good-again");
			/* io announces every tag again after reconnecting. */
			(void)pump(1000, NULL);
			result("republished %zu tags", count_seen(seen_since_mark));
			return tag_write("plant.dosing.naoh_sp", 100, 'u');
		}
		if ((r = pump(100, NULL)) != -ETIMEDOUT)
			return r;
	}
	result("quality never recovered");
	return -ETIMEDOUT;
}

static int script(void)
{
	const char *q;
	double v;
	int r;

	/* io connects on its own schedule: wait for its first poll. */
	for (int i = 0; i < 100 && tag_read("plant.tank.level", &v, &q, true) < 0; i++)
		(void)pump(100, NULL);
	/* The level moves (10 mm/s): check the quality and the range only. */
	if (tag_read("plant.tank.level", &v, &q, true) == 0)
		result("level %s in-range %s", q, v >= 0 && v <= 5000 ? "yes" : "no");
	(void)tag_read("plant.no.such", &v, &q, false);
	(void)tag_write("plant.dosing.naoh_sp", 110, 'i');
	(void)tag_read("plant.dosing.naoh_sp", &v, &q, false);
	/* io's own checks, behind a policy that lets these through. */
	(void)tag_write("plant.dosing.naoh_sp", 11100, 'i');
	(void)tag_write("plant.dosing.naoh_sp", 11100.0, 'd');
	(void)tag_write("plant.tank.level", 100, 'i');
	(void)tag_write("plant.no.such", 1, 'i');
	(void)tag_write("plant.pump.p101.run", 0.5, 'd');
	/* The policy's deny. */
	(void)tag_write("plant.safety.estop_bypass", 1, 'i');
	(void)tag_read("plant.dosing.naoh_sp", &v, &q, false);

	/* Drive the NaOH high alarm (130 ppm): the concentration follows a
	 * 200 ppm setpoint within a few seconds. */
	(void)tag_write("plant.dosing.naoh_sp", 200, 'i');
	r = pump(20000, hi_unack);
	result("hi alarm %s", r == 0 ? "raised" : "missing");
	alarms();
	ack(HI_ALARM);
	r = pump(5000, hi_acked);
	result("hi alarm %s", r == 0 ? "acked" : "not acked");
	ack("plant.no.such.hi");
	(void)tag_write("plant.dosing.naoh_sp", 105, 'i');

	query("plant.dosing.naoh_sp", 60);
	query("plant.dosing.naoh_sp", 3600);
	query("plant.dosing.naoh_sp", 0);
	query("plant.dosing.naoh_sp", 3601);
	query("plant.no.such", 60);
	/* Tags that never change were announced before this layer subscribed
	 * (the broker starts providers first): only the moving ones count. */
	result("tag.changed naoh_sp %s level %s", seen[TAG_NAOH_SP] ? "seen" : "missing",
	       seen[TAG_TANK_LEVEL] ? "seen" : "missing");
	result("phase1-done");
	return watch_quality();
}

int main(int argc, char **argv)
{
	const struct cdt_layer_options opts = {0};
	int r;

	if ((r = cdt_init()) < 0 || (r = cdt_layer_open(&opts, &L)) < 0)
		goto out;
	/* "idle": a ui that only keeps its session, for the hostile-PLC test. */
	if (argc > 1 && strcmp(argv[1], "idle") == 0) {
		r = cdt_layer_run(L);
		goto out;
	}
	if ((r = cdt_layer_subscribe(L, "tag.changed", on_changed, NULL)) < 0 ||
	    (r = cdt_layer_subscribe(L, "alarm.raised", on_alarm, NULL)) < 0)
		goto out;
	r = script();
	result("ui-done %s", r < 0 ? cdt_strerror(r) : "ok");
	r = cdt_layer_run(L);
out:
	if (r < 0)
		fprintf(stderr, "plant-ui-probe: %s\n", cdt_strerror(r));
	cdt_layer_free(L);
	return r < 0 ? 1 : 0;
}
