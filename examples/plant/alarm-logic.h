/* SPDX-License-Identifier: MIT */
/* Limit alarms with ISA-18.2-like states, free of I/O and clocks: the caller
 * passes values and a monotonic time in milliseconds.
 *
 * One struct alarm is one limit on one tag (ISA-18.2 counts each limit as a
 * separate alarm); a tag with hi and hihi limits has two.  State table
 * ("active" is the process condition after the deadband):
 *
 *   state        event                 next state
 *   NORMAL       condition active      UNACK
 *   UNACK        ack                   ACKED
 *   UNACK        condition clears      RTN_UNACK
 *   ACKED        condition clears      NORMAL
 *   RTN_UNACK    ack                   NORMAL
 *   RTN_UNACK    condition active      UNACK
 *   any of the four above   shelve     SHELVED (until the duration ends)
 *   SHELVED      unshelve or expiry    UNACK if active, else NORMAL
 *   any but OOS  suppress              SUPPRESSED
 *   SUPPRESSED   unsuppress            UNACK if active, else NORMAL
 *   any          out of service        OOS
 *   OOS          return to service     UNACK if active, else NORMAL
 *
 * While SHELVED, SUPPRESSED or OOS the condition is still tracked, so the
 * alarm reappears correctly; a shelved alarm that is later suppressed or
 * taken out of service loses its shelf. Ack in NORMAL, ACKED or a hidden
 * state changes nothing. */
#ifndef PLANT_ALARM_LOGIC_H
#define PLANT_ALARM_LOGIC_H

#include <stdbool.h>
#include <stdint.h>

/* The longest shelf: an operator's shift. */
#define ALARM_SHELVE_MAX_MS (8LL * 3600 * 1000)

enum alarm_kind {
	ALARM_HIHI,
	ALARM_HI,
	ALARM_LO,
	ALARM_LOLO,
};

enum alarm_state {
	ALARM_NORMAL,	  /* condition clear, nothing to acknowledge */
	ALARM_UNACK,	  /* condition active, not acknowledged */
	ALARM_ACKED,	  /* condition active, acknowledged */
	ALARM_RTN_UNACK,  /* condition cleared before anyone acknowledged it */
	ALARM_SHELVED,	  /* hidden by an operator for a limited time */
	ALARM_SUPPRESSED, /* hidden by design logic (e.g. equipment stopped) */
	ALARM_OOS,	  /* out of service for maintenance */
};

struct alarm {
	enum alarm_kind kind;
	double limit;
	double deadband; /* >= 0: how far back the value must go to clear */
	enum alarm_state state;
	bool active;	       /* the process condition, tracked in every state */
	int64_t shelved_until; /* ms, meaningful in ALARM_SHELVED */
};

/* Set up @a in NORMAL with the condition clear: 0, or -EINVAL for an
 * unknown kind, a non-finite limit or a negative or non-finite deadband. */
int alarm_init(struct alarm *a, enum alarm_kind kind, double limit, double deadband);

/* Feed a new process value at time @now_ms (also ends an expired shelf).
 * HI/HIHI become active at value >= limit and clear at value < limit -
 * deadband; LO/LOLO become active at value <= limit and clear at value >
 * limit + deadband.  Returns 1 when the state changed, 0 when not, -EINVAL
 * for NaN (a bad reading changes nothing). */
int alarm_update(struct alarm *a, double value, int64_t now_ms);

/* Time passes without a value: ends an expired shelf. 1 if the state
 * changed, else 0. */
int alarm_tick(struct alarm *a, int64_t now_ms);

/* Acknowledge: 1 if the state changed, 0 if there was nothing to ack. */
int alarm_ack(struct alarm *a);

/* Shelve for @duration_ms (1..ALARM_SHELVE_MAX_MS) from @now_ms; shelving a
 * shelved alarm sets a new end.  1 on change, 0 when only the end moved,
 * -ERANGE for a bad duration or an end past INT64_MAX, -EBUSY when the alarm
 * is SUPPRESSED or OOS (it is already hidden for a stronger reason). */
int alarm_shelve(struct alarm *a, int64_t now_ms, int64_t duration_ms);

/* End a shelf early: 1 on change, -EINVAL when not shelved. */
int alarm_unshelve(struct alarm *a);

/* Design suppression on or off: 1 on change, 0 when already so, -EBUSY
 * while OOS. */
int alarm_suppress(struct alarm *a, bool on);

/* Out of service on or off: 1 on change, 0 when already so. */
int alarm_set_oos(struct alarm *a, bool on);

/* Whether an operator should see it (UNACK, ACKED, RTN_UNACK). */
bool alarm_is_annunciated(const struct alarm *a);

/* "normal", "unack", "acked", "rtn-unack", "shelved", "suppressed", "oos";
 * NULL for an unknown value. */
const char *alarm_state_name(enum alarm_state state);

/* "hihi", "hi", "lo", "lolo"; NULL for an unknown value. */
const char *alarm_kind_name(enum alarm_kind kind);

#endif
