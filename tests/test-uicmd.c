/* SPDX-License-Identifier: MIT */
/* The ui layer's command language (examples/plant/uicmd.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "uicmd.h"

static int parse(const char *s, bool attacks, struct uicmd *c)
{
	return uicmd_parse(s, strlen(s), attacks, c);
}

static void test_operator(void **state)
{
	struct uicmd c;

	(void)state;
	assert_int_equal(parse("sp 110", false, &c), 0);
	assert_int_equal(c.kind, UICMD_SETPOINT);
	assert_true(c.value == 110.0);
	assert_int_equal(parse("  sp\t99.5  ", false, &c), 0);
	assert_true(c.value == 99.5);
	assert_int_equal(parse("pump on", false, &c), 0);
	assert_int_equal(c.kind, UICMD_PUMP);
	assert_true(c.on);
	assert_int_equal(parse("pump off", false, &c), 0);
	assert_false(c.on);
	assert_int_equal(parse("ack HI-plant.tank.level", false, &c), 0);
	assert_int_equal(c.kind, UICMD_ACK);
	assert_string_equal(c.arg, "HI-plant.tank.level");
	assert_int_equal(parse("quit", false, &c), 0);
	assert_int_equal(c.kind, UICMD_QUIT);
	assert_int_equal(parse("help", false, &c), 0);
	assert_int_equal(c.kind, UICMD_HELP);
}

static void test_rejects(void **state)
{
	struct uicmd c = {.kind = UICMD_HELP, .value = 7};
	static const char *const bad[] = {
		"sp",	   "sp 1 2",   "sp abc", "sp inf",     "sp nan",
		"sp 0x10", "sp 1e999", "pump",	 "pump maybe", "ack",
		"ack a b", "quit now", "SP 100", "frobnicate", "a b c d e f",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], true, &c), -EINVAL);
		/* ret is written only on success */
		assert_int_equal(c.kind, UICMD_HELP);
		assert_true(c.value == 7);
	}
	assert_int_equal(parse("", false, &c), -ENODATA);
	assert_int_equal(parse(" \t ", false, &c), -ENODATA);
	assert_int_equal(uicmd_parse("sp 1\0"
				     "00",
				     7, false, &c),
			 -EINVAL);
}

static void test_limits(void **state)
{
	char line[UICMD_LINE_MAX + 2];
	struct uicmd c;

	(void)state;
	/* a line of exactly UICMD_LINE_MAX bytes parses; one more is -E2BIG */
	memset(line, ' ', sizeof(line));
	memcpy(line, "quit", 4);
	assert_int_equal(uicmd_parse(line, UICMD_LINE_MAX, false, &c), 0);
	assert_int_equal(uicmd_parse(line, UICMD_LINE_MAX + 1, false, &c), -E2BIG);
	/* an alarm id of exactly UICMD_ARG_MAX bytes, and one more */
	memcpy(line, "ack ", 4);
	memset(line + 4, 'x', UICMD_ARG_MAX + 1);
	assert_int_equal(uicmd_parse(line, 4 + UICMD_ARG_MAX, false, &c), 0);
	assert_int_equal(strlen(c.arg), UICMD_ARG_MAX);
	assert_int_equal(uicmd_parse(line, 4 + UICMD_ARG_MAX + 1, false, &c), -E2BIG);
	/* a truncated command */
	assert_int_equal(uicmd_parse("pump on", 5, false, &c), -EINVAL);
}

static void test_attacks_need_the_switch(void **state)
{
	struct uicmd c;

	(void)state;
	assert_int_equal(parse("attack write plant.dosing.naoh_sp 11100", false, &c), -EPERM);
	assert_int_equal(parse("attack connect 127.0.0.1:1502", false, &c), -EPERM);
	assert_int_equal(parse("attack flood 5 plant.dosing.naoh_sp 110", false, &c), -EPERM);
	assert_int_equal(parse("attack write plant.dosing.naoh_sp 11100", true, &c), 0);
	assert_int_equal(c.kind, UICMD_ATTACK_WRITE);
	assert_string_equal(c.arg, "plant.dosing.naoh_sp");
	assert_true(c.value == 11100.0);
	assert_int_equal(parse("attack connect 127.0.0.1:1502", true, &c), 0);
	assert_int_equal(c.kind, UICMD_ATTACK_CONNECT);
	assert_int_equal(c.addr, 0x7f000001u);
	assert_int_equal(c.port, 1502);
	assert_int_equal(parse("attack flood 1000 plant.dosing.naoh_sp 110", true, &c), 0);
	assert_int_equal(c.count, UICMD_FLOOD_MAX);
	assert_int_equal(parse("attack flood 1001 plant.dosing.naoh_sp 110", true, &c), -EINVAL);
	assert_int_equal(parse("attack flood 0 plant.dosing.naoh_sp 110", true, &c), -EINVAL);
	assert_int_equal(parse("attack flood 01 plant.dosing.naoh_sp 110", true, &c), -EINVAL);
}

static void test_endpoints(void **state)
{
	static const char *const bad[] = {
		"attack connect 127.0.0.1",	 "attack connect 127.0.0.1:",
		"attack connect 127.0.0.1:0",	 "attack connect 127.0.0.1:65536",
		"attack connect 256.0.0.1:1",	 "attack connect 127.00.0.1:1",
		"attack connect 127.0.0:1",	 "attack connect 127.0.0.1.1:1",
		"attack connect localhost:1502", "attack connect 127.0.0.1:+1",
	};
	struct uicmd c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(bad[i], true, &c), -EINVAL);
	assert_int_equal(parse("attack connect 0.0.0.0:65535", true, &c), 0);
	assert_int_equal(c.port, 65535);
	assert_int_equal(c.addr, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_operator),  cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_limits),	  cmocka_unit_test(test_attacks_need_the_switch),
		cmocka_unit_test(test_endpoints),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
