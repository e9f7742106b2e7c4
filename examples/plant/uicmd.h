/* SPDX-License-Identifier: MIT */
/* The ui layer's command language, free of I/O: one command per line, from
 * the operator's keyboard or, in the scenario, from a file the launcher
 * appends to.
 *
 *   sp VALUE                 set the NaOH dosing setpoint (ppm)
 *   pump on|off              start or stop pump P-101
 *   ack ID                   acknowledge an alarm
 *   help | quit
 *
 * With the scenario's "compromised" switch only (never by default), the ui
 * also obeys an attacker, skipping every check of its own:
 *
 *   attack write TAG VALUE       write any tag with any value
 *   attack connect A.B.C.D:PORT  open a TCP socket itself
 *   attack flood N TAG VALUE     N writes as fast as the ui can send them
 */
#ifndef PLANT_UICMD_H
#define PLANT_UICMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UICMD_LINE_MAX	128  /* bytes of one command line, newline excluded */
#define UICMD_ARG_MAX	64   /* bytes of a tag, alarm id or address */
#define UICMD_FLOOD_MAX 1000 /* writes of one flood */

enum uicmd_kind {
	UICMD_SETPOINT,
	UICMD_PUMP,
	UICMD_ACK,
	UICMD_HELP,
	UICMD_QUIT,
	UICMD_ATTACK_WRITE,
	UICMD_ATTACK_CONNECT,
	UICMD_ATTACK_FLOOD,
};

struct uicmd {
	enum uicmd_kind kind;
	double value;		     /* SETPOINT, ATTACK_WRITE, ATTACK_FLOOD */
	bool on;		     /* PUMP */
	uint32_t count;		     /* ATTACK_FLOOD: 1..UICMD_FLOOD_MAX */
	uint32_t addr;		     /* ATTACK_CONNECT: IPv4, host order */
	uint16_t port;		     /* ATTACK_CONNECT: 1..65535 */
	char arg[UICMD_ARG_MAX + 1]; /* ACK: id; ATTACK_WRITE/FLOOD: tag */
};

/* Parse one line of len bytes (no newline; surrounding blanks are ignored).
 * attacks: whether the compromised switch is on.  Errors: -EINVAL (not a
 * command, a bad number or address), -E2BIG (line or argument too long),
 * -EPERM (an attack command while the switch is off), -ENODATA (blank). */
int uicmd_parse(const char *line, size_t len, bool attacks, struct uicmd *ret);

#endif
