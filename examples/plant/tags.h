/* SPDX-License-Identifier: MIT */
/* The demo plant's tag table: one place that says which Modbus register
 * carries which process value, its engineering range and whether anything
 * may write it.  plcsim sizes its register map from it; the io, alarm, hist
 * and ui layers name values by it. */
#ifndef PLANT_TAGS_H
#define PLANT_TAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Modbus data areas (the four tables of the Modbus data model). */
enum tag_area {
	TAG_AREA_COIL, /* read/write bits, FC 1, 5, 15 */
	TAG_AREA_DI,   /* read-only bits (discrete inputs), FC 2 */
	TAG_AREA_HR,   /* read/write 16-bit holding registers, FC 3, 6, 16 */
	TAG_AREA_IR,   /* read-only 16-bit input registers, FC 4 */
};
#define TAG_AREA_COUNT 4

enum tag_type {
	TAG_TYPE_BOOL,
	TAG_TYPE_UINT16,
};

/* Tag ids are indexes into the table and are what the historian stores:
 * append new tags at the end so stored ids keep their meaning. */
enum tag_id {
	TAG_TANK_LEVEL,
	TAG_PH,
	TAG_NAOH_CONC,
	TAG_PUMP_SPEED_FB,
	TAG_INFLOW,
	TAG_NAOH_SP,
	TAG_PUMP_SPEED,
	TAG_PUMP_RUN,
	TAG_INLET_VALVE,
	TAG_ESTOP_BYPASS,
	TAG_SIM_ESTOP_BUTTON,
	TAG_HIGH_LEVEL,
	TAG_ESTOP,
	TAG_COUNT
};

struct tag_def {
	const char *name; /* "plant.tank.level": lowercase, dot-separated */
	enum tag_area area;
	uint16_t addr; /* 0-based protocol (PDU) address */
	enum tag_type type;
	uint16_t scale; /* raw = engineering value * scale; 1 for most */
	double eng_min; /* engineering range (after scaling), inclusive */
	double eng_max;
	const char *unit; /* "mm", "ppm", "%", "pH", "" for bools */
	bool readonly;	  /* no client may write it (DI, IR) */
	const char *desc;
};

/* Number of tags; ids are 0..tags_count()-1. */
size_t tags_count(void);

/* The tag with id @id, or NULL when @id is out of range. */
const struct tag_def *tags_get(size_t id);

/* Look a tag up by exact name; 0 and its id in *ret_id, or -ENOENT.
 * @name need not be NUL-terminated beyond @len bytes. */
int tags_find(const char *name, size_t len, size_t *ret_id);

/* Look a tag up by area and address; 0 and its id in *ret_id, or -ENOENT. */
int tags_find_addr(enum tag_area area, uint16_t addr, size_t *ret_id);

/* Number of addresses plcsim must map in @area (highest address + 1). */
uint16_t tags_area_size(enum tag_area area);

/* "coil", "di", "hr", "ir"; NULL for an unknown area. */
const char *tags_area_name(enum tag_area area);

/* Raw register value -> engineering value (divides by the scale). */
double tags_raw_to_eng(const struct tag_def *tag, uint16_t raw);

/* Engineering value -> raw register value: 0 and the rounded raw value, or
 * -EINVAL for NaN and -ERANGE when it does not fit 0..65535 after scaling
 * (a uint16 register cannot say it). Does not apply the engineering range:
 * see tags_in_range(). */
int tags_eng_to_raw(const struct tag_def *tag, double eng, uint16_t *ret_raw);

/* Whether @eng lies in the tag's engineering range (NaN never does). */
bool tags_in_range(const struct tag_def *tag, double eng);

#endif
