/* SPDX-License-Identifier: MIT */
/*
 * plant-alarm: the demo plant's limit alarms.  Subscribes to tag.changed,
 * runs each value through alarm-logic.c, publishes alarm.raised on every
 * state change and serves alarm.list and alarm.ack (the message contract is
 * in examples/plant/MESSAGES.md).  It holds no resource and needs no timer:
 * shelving, the one timed feature of alarm-logic, is not offered here.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alarm-logic.h"
#include "layer-util.h"
#include "tags.h"

#define PROG	 "plant-alarm"
#define LIST_MAX 8192 /* alarm.list text: every alarm's line fits */
#define ID_MAX	 64

enum prio {
	PRIO_HIGH,
	PRIO_MEDIUM,
	PRIO_LOW,
};

struct alarm_def {
	enum tag_id tag;
	enum alarm_kind kind;
	double limit;
	double deadband;
	enum prio prio;
	const char *message;
};

/* Limits chosen around the plant's normal operation (README.md, Physics):
 * setpoint 80..120 ppm, the level cycling 4400..4500 mm under the
 * high-level interlock.  A stopped pump drains the concentration below the
 * low limit in a few seconds, a setpoint far above the window raises it
 * over the high one. */
static const struct alarm_def defs[] = {
	{TAG_NAOH_CONC, ALARM_HIHI, 180, 5, PRIO_HIGH, "NaOH concentration very high"},
	{TAG_NAOH_CONC, ALARM_HI, 130, 5, PRIO_MEDIUM, "NaOH concentration high"},
	{TAG_NAOH_CONC, ALARM_LO, 60, 5, PRIO_LOW, "NaOH concentration low"},
	{TAG_PH, ALARM_HIHI, 10.0, 0.1, PRIO_HIGH, "pH very high"},
	{TAG_PH, ALARM_HI, 9.0, 0.1, PRIO_MEDIUM, "pH high"},
	{TAG_TANK_LEVEL, ALARM_HIHI, 4800, 50, PRIO_HIGH, "tank level very high"},
	{TAG_TANK_LEVEL, ALARM_LO, 1000, 50, PRIO_LOW, "tank level low"},
	{TAG_ESTOP, ALARM_HI, 1, 0, PRIO_HIGH, "E-stop pressed"},
};
#define NALARMS (sizeof(defs) / sizeof(defs[0]))

struct alarms {
	struct alarm a[NALARMS];
	double value[NALARMS]; /* the last value of the alarm's tag */
	char id[NALARMS][ID_MAX];
};

static const char *prio_name(enum prio p)
{
	return p == PRIO_HIGH ? "high" : p == PRIO_MEDIUM ? "medium" : "low";
}

/* The contract's state names (ISA-18.2 wording). */
static const char *state_name(enum alarm_state s)
{
	switch (s) {
	case ALARM_NORMAL:
		return "normal";
	case ALARM_UNACK:
		return "unack-active";
	case ALARM_ACKED:
		return "ack-active";
	case ALARM_RTN_UNACK:
		return "unack-rtn";
	case ALARM_SHELVED:
	case ALARM_SUPPRESSED:
	case ALARM_OOS:
		break;
	}
	return alarm_state_name(s);
}

static void publish_raised(cdt_layer *layer, const struct alarms *al, size_t i)
{
	const char *tag = tags_get(defs[i].tag)->name, *st = state_name(al->a[i].state),
		   *pr = prio_name(defs[i].prio);
	cdt_msg *ev = NULL;
	int r;

	if ((r = cdt_msg_new(CDT_KIND_EVENT, 0, "alarm.raised", &ev)) < 0 ||
	    (r = cdt_msg_add_string(ev, "id", al->id[i], strlen(al->id[i]))) < 0 ||
	    (r = cdt_msg_add_string(ev, "state", st, strlen(st))) < 0 ||
	    (r = cdt_msg_add_string(ev, "priority", pr, strlen(pr))) < 0 ||
	    (r = cdt_msg_add_string(ev, "tag", tag, strlen(tag))) < 0 ||
	    (r = cdt_msg_add_double(ev, "value", al->value[i])) < 0 ||
	    (r = cdt_msg_add_string(ev, "message", defs[i].message, strlen(defs[i].message))) < 0 ||
	    (r = cdt_layer_publish(layer, ev)) < 0)
		lu_warn(PROG, "publishing alarm.raised", r);
	else
		fprintf(stderr, "%s: %s %s (%g)\n", PROG, al->id[i], st, al->value[i]);
	cdt_msg_free(ev);
}

static void on_tag_changed(cdt_layer *layer, const cdt_msg *event, void *userdata)
{
	struct alarms *al = userdata;
	const char *name;
	size_t len, id;
	double value;
	int64_t now = lu_mono_ms();

	/* The policy filters on the tag name; an event we cannot read is
	 * the publisher's problem, not a reason to stop. */
	if (cdt_msg_get_string(event, "tag", &name, &len) < 0 || tags_find(name, len, &id) < 0 ||
	    lu_get_number(event, "value", &value) < 0)
		return;
	for (size_t i = 0; i < NALARMS; i++) {
		if ((size_t)defs[i].tag != id)
			continue;
		al->value[i] = value;
		if (alarm_update(&al->a[i], value, now) == 1)
			publish_raised(layer, al, i);
	}
}

static void on_list(cdt_layer *layer, cdt_msg *call, void *userdata)
{
	const struct alarms *al = userdata;
	static char text[LIST_MAX];
	size_t off = 0;
	cdt_msg *reply = NULL;
	int r;

	for (size_t i = 0; i < NALARMS; i++) {
		int n = snprintf(text + off, sizeof(text) - off, "%s\t%s\t%s\t%s\t%g\t%s\n",
				 al->id[i], state_name(al->a[i].state), prio_name(defs[i].prio),
				 tags_get(defs[i].tag)->name, al->value[i], defs[i].message);
		/* The table is fixed: LIST_MAX holds it with room to spare. */
		if (n < 0 || (size_t)n >= sizeof(text) - off) {
			r = -ENOBUFS;
			goto out;
		}
		off += (size_t)n;
	}
	if ((r = cdt_msg_new(CDT_KIND_REPLY, cdt_msg_call_id(call), NULL, &reply)) == 0 &&
	    (r = cdt_msg_add_u64(reply, "count", NALARMS)) == 0 &&
	    (r = cdt_msg_add_string(reply, "alarms", text, off)) == 0)
		r = cdt_layer_reply(layer, call, reply);
out:
	if (r < 0) {
		lu_warn(PROG, "answering alarm.list", r);
		if (cdt_layer_reply_error(layer, call, "alarm.failed") < 0)
			fprintf(stderr, "%s: cannot answer alarm.list\n", PROG);
	}
	cdt_msg_free(reply);
	cdt_msg_free(call);
}

static void on_ack(cdt_layer *layer, cdt_msg *call, void *userdata)
{
	struct alarms *al = userdata;
	const char *id, *caller;
	size_t len, i;
	int r;

	if (cdt_msg_get_string(call, "_caller", &caller, NULL) < 0)
		caller = "?";
	if (cdt_msg_get_string(call, "id", &id, &len) < 0)
		len = 0, id = "";
	for (i = 0; i < NALARMS; i++)
		if (strlen(al->id[i]) == len && memcmp(al->id[i], id, len) == 0)
			break;
	if (i == NALARMS) {
		r = cdt_layer_reply_error(layer, call, "alarm.unknown");
	} else {
		/* Acknowledging what needs none changes nothing and is no error. */
		if (alarm_ack(&al->a[i]) == 1) {
			fprintf(stderr, "%s: %s acknowledged by %s\n", PROG, al->id[i], caller);
			publish_raised(layer, al, i);
		}
		r = cdt_layer_reply(layer, call, NULL);
	}
	if (r < 0)
		lu_warn(PROG, "answering alarm.ack", r);
	cdt_msg_free(call);
}

int main(void)
{
	const struct cdt_layer_options opts = {
		.provide = "alarm.ack alarm.list",
		.publish = "alarm.raised",
	};
	static struct alarms al;
	cdt_layer *layer = NULL;
	int r = 0;

	for (size_t i = 0; i < NALARMS && r == 0; i++) {
		/* "plant.dosing.naoh_conc.hi": the tag and the limit. */
		snprintf(al.id[i], sizeof(al.id[i]), "%s.%s", tags_get(defs[i].tag)->name,
			 alarm_kind_name(defs[i].kind));
		r = alarm_init(&al.a[i], defs[i].kind, defs[i].limit, defs[i].deadband);
	}
	if (r < 0)
		goto out;
	if ((r = cdt_init()) < 0 || (r = cdt_layer_open(&opts, &layer)) < 0)
		goto out;
	if ((r = cdt_layer_serve(layer, "alarm.list", on_list, &al)) < 0 ||
	    (r = cdt_layer_serve(layer, "alarm.ack", on_ack, &al)) < 0 ||
	    (r = cdt_layer_subscribe(layer, "tag.changed", on_tag_changed, &al)) < 0)
		goto out;
	r = cdt_layer_run(layer);
out:
	if (r < 0)
		fprintf(stderr, "%s: %s\n", PROG, cdt_strerror(r));
	cdt_layer_free(layer);
	return r < 0 ? 1 : 0;
}
