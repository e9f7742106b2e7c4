/* SPDX-License-Identifier: MIT */
/* The plant's tag table: consistent with itself and with the Modbus data
 * model, lookups exact, conversions refusing what a register cannot hold. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tags.h"

static void test_tags_table_consistent(void **state)
{
	(void)state;
	assert_int_equal(tags_count(), TAG_COUNT);
	for (size_t i = 0; i < tags_count(); i++) {
		const struct tag_def *t = tags_get(i);
		assert_non_null(t);
		assert_non_null(t->name);
		assert_true(strncmp(t->name, "plant.", 6) == 0);
		for (const char *c = t->name; *c; c++)
			assert_true((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
				    *c == '.' || *c == '_');
		assert_non_null(t->unit);
		assert_non_null(t->desc);
		assert_true(t->scale >= 1);
		assert_true(t->eng_min <= t->eng_max);
		/* Bits live in bit areas, words in register areas. */
		bool bit_area = t->area == TAG_AREA_COIL || t->area == TAG_AREA_DI;
		assert_int_equal(bit_area, t->type == TAG_TYPE_BOOL);
		/* Inputs are read-only by the data model; outputs are not. */
		bool input_area = t->area == TAG_AREA_DI || t->area == TAG_AREA_IR;
		assert_int_equal(input_area, t->readonly);
		/* The whole engineering range fits a register after scaling. */
		uint16_t raw;
		assert_int_equal(tags_eng_to_raw(t, t->eng_min, &raw), 0);
		assert_int_equal(tags_eng_to_raw(t, t->eng_max, &raw), 0);
		for (size_t j = i + 1; j < tags_count(); j++) {
			const struct tag_def *u = tags_get(j);
			assert_string_not_equal(t->name, u->name);
			assert_false(t->area == u->area && t->addr == u->addr);
		}
	}
	assert_null(tags_get(TAG_COUNT));
	assert_null(tags_get(SIZE_MAX));
}

static void test_tags_register_map(void **state)
{
	(void)state;
	/* The map documented in examples/plant/README.md. */
	static const struct {
		enum tag_id id;
		enum tag_area area;
		uint16_t addr;
	} map[] = {
		{TAG_TANK_LEVEL, TAG_AREA_IR, 0},
		{TAG_PH, TAG_AREA_IR, 1},
		{TAG_NAOH_CONC, TAG_AREA_IR, 2},
		{TAG_PUMP_SPEED_FB, TAG_AREA_IR, 3},
		{TAG_INFLOW, TAG_AREA_IR, 4},
		{TAG_NAOH_SP, TAG_AREA_HR, 0},
		{TAG_PUMP_SPEED, TAG_AREA_HR, 1},
		{TAG_PUMP_RUN, TAG_AREA_COIL, 0},
		{TAG_INLET_VALVE, TAG_AREA_COIL, 1},
		{TAG_ESTOP_BYPASS, TAG_AREA_COIL, 2},
		{TAG_SIM_ESTOP_BUTTON, TAG_AREA_COIL, 3},
		{TAG_HIGH_LEVEL, TAG_AREA_DI, 0},
		{TAG_ESTOP, TAG_AREA_DI, 1},
	};
	assert_int_equal(sizeof(map) / sizeof(map[0]), TAG_COUNT);
	for (size_t i = 0; i < TAG_COUNT; i++) {
		size_t id;
		assert_int_equal(tags_find_addr(map[i].area, map[i].addr, &id), 0);
		assert_int_equal(id, map[i].id);
	}
	const struct tag_def *sp = tags_get(TAG_NAOH_SP);
	assert_string_equal(sp->name, "plant.dosing.naoh_sp");
	assert_true(sp->eng_min == 0.0 && sp->eng_max == 200.0);
	assert_false(sp->readonly);
	assert_int_equal(tags_area_size(TAG_AREA_COIL), 4);
	assert_int_equal(tags_area_size(TAG_AREA_DI), 2);
	assert_int_equal(tags_area_size(TAG_AREA_HR), 2);
	assert_int_equal(tags_area_size(TAG_AREA_IR), 5);
	assert_string_equal(tags_area_name(TAG_AREA_COIL), "coil");
	assert_string_equal(tags_area_name(TAG_AREA_DI), "di");
	assert_string_equal(tags_area_name(TAG_AREA_HR), "hr");
	assert_string_equal(tags_area_name(TAG_AREA_IR), "ir");
	assert_null(tags_area_name((enum tag_area)TAG_AREA_COUNT));
}

static void test_tags_find(void **state)
{
	(void)state;
	size_t id = 12345;
	const char *n = "plant.dosing.naoh_sp";
	assert_int_equal(tags_find(n, strlen(n), &id), 0);
	assert_int_equal(id, TAG_NAOH_SP);
	/* Prefix, extension, case, embedded NUL, empty: never a match, and
	 * the out-parameter stays untouched. */
	id = 12345;
	assert_int_equal(tags_find(n, strlen(n) - 1, &id), -ENOENT);
	assert_int_equal(tags_find("plant.dosing.naoh_sp2", 21, &id), -ENOENT);
	assert_int_equal(tags_find("PLANT.DOSING.NAOH_SP", 20, &id), -ENOENT);
	assert_int_equal(tags_find("plant.dosing.naoh_sp\0x", 22, &id), -ENOENT);
	assert_int_equal(tags_find("", 0, &id), -ENOENT);
	assert_int_equal(tags_find(NULL, 0, &id), -ENOENT);
	assert_int_equal(id, 12345);
	assert_int_equal(tags_find_addr(TAG_AREA_HR, 2, &id), -ENOENT);
	assert_int_equal(tags_find_addr(TAG_AREA_IR, UINT16_MAX, &id), -ENOENT);
	assert_int_equal(id, 12345);
}

static void test_tags_conversions(void **state)
{
	(void)state;
	const struct tag_def *ph = tags_get(TAG_PH);
	const struct tag_def *sp = tags_get(TAG_NAOH_SP);
	uint16_t raw = 7;
	assert_true(fabs(tags_raw_to_eng(ph, 772) - 7.72) < 1e-9);
	assert_int_equal(tags_eng_to_raw(ph, 7.72, &raw), 0);
	assert_int_equal(raw, 772);
	assert_int_equal(tags_eng_to_raw(sp, 65535.0, &raw), 0); /* exactly max */
	assert_int_equal(raw, 65535);
	raw = 7;
	assert_int_equal(tags_eng_to_raw(sp, 65536.0, &raw), -ERANGE); /* max + 1 */
	assert_int_equal(tags_eng_to_raw(sp, -1.0, &raw), -ERANGE);
	assert_int_equal(tags_eng_to_raw(sp, INFINITY, &raw), -ERANGE);
	assert_int_equal(tags_eng_to_raw(sp, NAN, &raw), -EINVAL);
	assert_int_equal(tags_eng_to_raw(ph, 655.36, &raw), -ERANGE);
	assert_int_equal(raw, 7);
	/* The engineering range: 0..200 inclusive; 11100 is a valid register
	 * value that only the policy may refuse. */
	assert_true(tags_in_range(sp, 0.0));
	assert_true(tags_in_range(sp, 200.0));
	assert_false(tags_in_range(sp, 200.5));
	assert_false(tags_in_range(sp, -0.5));
	assert_false(tags_in_range(sp, 11100.0));
	assert_false(tags_in_range(sp, NAN));
	assert_int_equal(tags_eng_to_raw(sp, 11100.0, &raw), 0);
	assert_int_equal(raw, 11100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tags_table_consistent),
		cmocka_unit_test(test_tags_register_map),
		cmocka_unit_test(test_tags_find),
		cmocka_unit_test(test_tags_conversions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
