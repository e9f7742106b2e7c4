/* SPDX-License-Identifier: MIT */
/* The state table is in alarm-logic.h; this file is its only implementation. */
#include <errno.h>
#include <math.h>
#include <stddef.h>

#include "alarm-logic.h"

int alarm_init(struct alarm *a, enum alarm_kind kind, double limit, double deadband)
{
	switch (kind) {
	case ALARM_HIHI:
	case ALARM_HI:
	case ALARM_LO:
	case ALARM_LOLO:
		break;
	default:
		return -EINVAL;
	}
	if (!isfinite(limit) || !isfinite(deadband) || deadband < 0.0)
		return -EINVAL;
	*a = (struct alarm){
		.kind = kind,
		.limit = limit,
		.deadband = deadband,
		.state = ALARM_NORMAL,
	};
	return 0;
}

static bool is_high(enum alarm_kind kind)
{
	return kind == ALARM_HIHI || kind == ALARM_HI;
}

/* The condition with its deadband: once active it holds until the value has
 * moved the deadband back past the limit, so a noisy value does not chatter. */
static bool condition(const struct alarm *a, double value)
{
	if (is_high(a->kind)) {
		if (a->active)
			return !(value < a->limit - a->deadband);
		return value >= a->limit;
	}
	if (a->active)
		return !(value > a->limit + a->deadband);
	return value <= a->limit;
}

/* Where an alarm lands when it stops being hidden. */
static enum alarm_state reappear(const struct alarm *a)
{
	return a->active ? ALARM_UNACK : ALARM_NORMAL;
}

static int set_state(struct alarm *a, enum alarm_state next)
{
	if (a->state == next)
		return 0;
	a->state = next;
	return 1;
}

int alarm_tick(struct alarm *a, int64_t now_ms)
{
	if (a->state == ALARM_SHELVED && now_ms >= a->shelved_until)
		return set_state(a, reappear(a));
	return 0;
}

int alarm_update(struct alarm *a, double value, int64_t now_ms)
{
	if (isnan(value))
		return -EINVAL;
	int changed = alarm_tick(a, now_ms);
	bool was = a->active;
	a->active = condition(a, value);
	if (a->active == was)
		return changed;

	enum alarm_state next = a->state;
	switch (a->state) {
	case ALARM_NORMAL:
		next = ALARM_UNACK; /* only a rising condition gets here */
		break;
	case ALARM_UNACK:
		next = ALARM_RTN_UNACK;
		break;
	case ALARM_ACKED:
		next = ALARM_NORMAL;
		break;
	case ALARM_RTN_UNACK:
		next = ALARM_UNACK;
		break;
	case ALARM_SHELVED:
	case ALARM_SUPPRESSED:
	case ALARM_OOS:
		break; /* hidden: only the condition is tracked */
	}
	return set_state(a, next) | changed;
}

int alarm_ack(struct alarm *a)
{
	switch (a->state) {
	case ALARM_UNACK:
		return set_state(a, ALARM_ACKED);
	case ALARM_RTN_UNACK:
		return set_state(a, ALARM_NORMAL);
	case ALARM_NORMAL:
	case ALARM_ACKED:
	case ALARM_SHELVED:
	case ALARM_SUPPRESSED:
	case ALARM_OOS:
		break;
	}
	return 0;
}

int alarm_shelve(struct alarm *a, int64_t now_ms, int64_t duration_ms)
{
	if (duration_ms <= 0 || duration_ms > ALARM_SHELVE_MAX_MS)
		return -ERANGE;
	if (now_ms > INT64_MAX - duration_ms)
		return -ERANGE;
	if (a->state == ALARM_SUPPRESSED || a->state == ALARM_OOS)
		return -EBUSY;
	a->shelved_until = now_ms + duration_ms;
	return set_state(a, ALARM_SHELVED);
}

int alarm_unshelve(struct alarm *a)
{
	if (a->state != ALARM_SHELVED)
		return -EINVAL;
	return set_state(a, reappear(a));
}

int alarm_suppress(struct alarm *a, bool on)
{
	if (a->state == ALARM_OOS)
		return -EBUSY;
	if (on)
		return set_state(a, ALARM_SUPPRESSED);
	if (a->state != ALARM_SUPPRESSED)
		return 0;
	return set_state(a, reappear(a));
}

int alarm_set_oos(struct alarm *a, bool on)
{
	if (on)
		return set_state(a, ALARM_OOS);
	if (a->state != ALARM_OOS)
		return 0;
	return set_state(a, reappear(a));
}

bool alarm_is_annunciated(const struct alarm *a)
{
	return a->state == ALARM_UNACK || a->state == ALARM_ACKED || a->state == ALARM_RTN_UNACK;
}

const char *alarm_state_name(enum alarm_state state)
{
	switch (state) {
	case ALARM_NORMAL:
		return "normal";
	case ALARM_UNACK:
		return "unack";
	case ALARM_ACKED:
		return "acked";
	case ALARM_RTN_UNACK:
		return "rtn-unack";
	case ALARM_SHELVED:
		return "shelved";
	case ALARM_SUPPRESSED:
		return "suppressed";
	case ALARM_OOS:
		return "oos";
	}
	return NULL;
}

const char *alarm_kind_name(enum alarm_kind kind)
{
	switch (kind) {
	case ALARM_HIHI:
		return "hihi";
	case ALARM_HI:
		return "hi";
	case ALARM_LO:
		return "lo";
	case ALARM_LOLO:
		return "lolo";
	}
	return NULL;
}
