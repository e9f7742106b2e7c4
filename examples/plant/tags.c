/* SPDX-License-Identifier: MIT */
/* The tag table itself.  Keep it in step with the register map in
 * examples/plant/README.md; test-tags checks the table's own consistency. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "tags.h"

static const struct tag_def tag_table[TAG_COUNT] = {
	[TAG_TANK_LEVEL] = {"plant.tank.level", TAG_AREA_IR, 0, TAG_TYPE_UINT16, 1, 0, 5000, "mm",
			    true, "tank T-100 level"},
	[TAG_PH] = {"plant.water.ph", TAG_AREA_IR, 1, TAG_TYPE_UINT16, 100, 0, 14, "pH", true,
		    "treated water pH (register holds pH x 100)"},
	[TAG_NAOH_CONC] = {"plant.dosing.naoh_conc", TAG_AREA_IR, 2, TAG_TYPE_UINT16, 1, 0, 65535,
			   "ppm", true, "measured NaOH concentration"},
	[TAG_PUMP_SPEED_FB] = {"plant.pump.p101.speed_fb", TAG_AREA_IR, 3, TAG_TYPE_UINT16, 1, 0,
			       100, "%", true, "dosing pump P-101 actual speed"},
	[TAG_INFLOW] = {"plant.tank.inflow", TAG_AREA_IR, 4, TAG_TYPE_UINT16, 10, 0, 100, "l/s",
			true, "raw water inflow through V-201 (register holds l/s x 10)"},
	[TAG_NAOH_SP] = {"plant.dosing.naoh_sp", TAG_AREA_HR, 0, TAG_TYPE_UINT16, 1, 0, 200, "ppm",
			 false, "NaOH dosing setpoint (operating window 80..120, normal 100)"},
	[TAG_PUMP_SPEED] = {"plant.pump.p101.speed", TAG_AREA_HR, 1, TAG_TYPE_UINT16, 1, 0, 100,
			    "%", false, "dosing pump P-101 speed command"},
	[TAG_PUMP_RUN] = {"plant.pump.p101.run", TAG_AREA_COIL, 0, TAG_TYPE_BOOL, 1, 0, 1, "",
			  false, "dosing pump P-101 run command"},
	[TAG_INLET_VALVE] = {"plant.valve.v201.open", TAG_AREA_COIL, 1, TAG_TYPE_BOOL, 1, 0, 1, "",
			     false, "inlet valve V-201 open command"},
	[TAG_ESTOP_BYPASS] =
		{"plant.safety.estop_bypass", TAG_AREA_COIL, 2, TAG_TYPE_BOOL, 1, 0, 1, "", false,
		 "maintenance bypass: E-stop no longer stops P-101 (never for layers)"},
	[TAG_SIM_ESTOP_BUTTON] = {"plant.sim.estop_button", TAG_AREA_COIL, 3, TAG_TYPE_BOOL, 1, 0,
				  1, "", false, "simulator only: presses the E-stop (drives DI 1)"},
	[TAG_HIGH_LEVEL] = {"plant.tank.high_level", TAG_AREA_DI, 0, TAG_TYPE_BOOL, 1, 0, 1, "",
			    true, "high-level switch LSH-100 (closes V-201 while active)"},
	[TAG_ESTOP] = {"plant.safety.estop", TAG_AREA_DI, 1, TAG_TYPE_BOOL, 1, 0, 1, "", true,
		       "E-stop input (stops P-101 unless bypassed)"},
};

size_t tags_count(void)
{
	return TAG_COUNT;
}

const struct tag_def *tags_get(size_t id)
{
	if (id >= TAG_COUNT)
		return NULL;
	return &tag_table[id];
}

int tags_find(const char *name, size_t len, size_t *ret_id)
{
	if (!name)
		return -ENOENT;
	for (size_t i = 0; i < TAG_COUNT; i++) {
		/* Exact length first: a prefix or a name with a NUL inside never matches. */
		if (strlen(tag_table[i].name) == len && memcmp(tag_table[i].name, name, len) == 0) {
			*ret_id = i;
			return 0;
		}
	}
	return -ENOENT;
}

int tags_find_addr(enum tag_area area, uint16_t addr, size_t *ret_id)
{
	for (size_t i = 0; i < TAG_COUNT; i++) {
		if (tag_table[i].area == area && tag_table[i].addr == addr) {
			*ret_id = i;
			return 0;
		}
	}
	return -ENOENT;
}

uint16_t tags_area_size(enum tag_area area)
{
	uint16_t n = 0;
	for (size_t i = 0; i < TAG_COUNT; i++)
		if (tag_table[i].area == area && tag_table[i].addr >= n)
			n = (uint16_t)(tag_table[i].addr + 1);
	return n;
}

const char *tags_area_name(enum tag_area area)
{
	switch (area) {
	case TAG_AREA_COIL:
		return "coil";
	case TAG_AREA_DI:
		return "di";
	case TAG_AREA_HR:
		return "hr";
	case TAG_AREA_IR:
		return "ir";
	}
	return NULL;
}

double tags_raw_to_eng(const struct tag_def *tag, uint16_t raw)
{
	return (double)raw / (double)tag->scale;
}

int tags_eng_to_raw(const struct tag_def *tag, double eng, uint16_t *ret_raw)
{
	if (isnan(eng))
		return -EINVAL;
	double raw = round(eng * (double)tag->scale);
	if (!(raw >= 0.0 && raw <= 65535.0))
		return -ERANGE;
	*ret_raw = (uint16_t)raw;
	return 0;
}

bool tags_in_range(const struct tag_def *tag, double eng)
{
	return eng >= tag->eng_min && eng <= tag->eng_max;
}
