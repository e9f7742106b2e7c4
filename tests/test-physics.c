/* SPDX-License-Identifier: MIT */
/* The plant physics: steady state, filling and draining, the high-level
 * interlock with its hysteresis, the lags, E-stop and bypass, and clamping
 * of what the PLC accepts but the plant cannot do. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "physics.h"

static const struct physics_inputs normal = {
	.naoh_sp_ppm = 100,
	.pump_speed_pct = 50,
	.pump_run = true,
	.valve_open = true,
};

static void run(struct physics_state *s, const struct physics_inputs *in, int ticks)
{
	for (int i = 0; i < ticks; i++)
		assert_int_equal(physics_step(s, in, 0.1), 0);
}

static void test_physics_init(void **state)
{
	(void)state;
	struct physics_state s;
	physics_init(&s);
	struct physics_outputs o;
	physics_outputs(&s, &o);
	assert_int_equal(o.level_mm, 2500);
	assert_int_equal(o.naoh_conc_ppm, 100);
	assert_int_equal(o.ph_x100, (uint16_t)lround(physics_ph_for_conc(100.0) * 100.0));
	assert_int_equal(o.pump_speed_fb, 50);
	assert_int_equal(o.inflow_lps_x10, 200);
	assert_false(o.high_level);
	/* Normal operation holds the concentration where it is. */
	run(&s, &normal, 50);
	assert_true(fabs(s.conc_ppm - 100.0) < 1e-9);
}

static void test_physics_step_bounds(void **state)
{
	(void)state;
	struct physics_state s, before;
	physics_init(&s);
	before = s;
	assert_int_equal(physics_step(&s, &normal, 0.0), -EINVAL);
	assert_int_equal(physics_step(&s, &normal, -0.1), -EINVAL);
	assert_int_equal(physics_step(&s, &normal, NAN), -EINVAL);
	assert_int_equal(physics_step(&s, &normal, INFINITY), -EINVAL);
	assert_int_equal(physics_step(&s, &normal, PHYS_DT_MAX_S + 0.001), -EINVAL);
	assert_memory_equal(&s, &before, sizeof(s));
	assert_int_equal(physics_step(&s, &normal, PHYS_DT_MAX_S), 0); /* exactly max */
}

static void test_physics_level(void **state)
{
	(void)state;
	struct physics_state s;
	physics_init(&s);
	/* Valve open: +10 l/s net on 1 m2 is +10 mm/s. */
	run(&s, &normal, 10);
	assert_true(fabs(s.level_mm - 2510.0) < 1e-6);
	/* Valve closed: the demand drains 10 mm/s. */
	struct physics_inputs closed = normal;
	closed.valve_open = false;
	run(&s, &closed, 20);
	assert_true(fabs(s.level_mm - 2490.0) < 1e-6);
	assert_true(s.inflow_lps == 0.0);
	/* Drained: level stops at 0, outflow stops, concentration holds. */
	s.level_mm = 5.0;
	struct physics_inputs high_sp = closed;
	high_sp.naoh_sp_ppm = 200;
	run(&s, &high_sp, 10);
	assert_true(s.level_mm == 0.0);
	assert_true(s.outflow_lps == 0.0);
	double held = s.conc_ppm;
	run(&s, &high_sp, 10);
	assert_true(s.conc_ppm == held);
	struct physics_outputs o;
	physics_outputs(&s, &o);
	assert_int_equal(o.level_mm, 0);
}

static void test_physics_high_level_interlock(void **state)
{
	(void)state;
	struct physics_state s;
	physics_init(&s);
	s.level_mm = PHYS_HLS_ON_MM - 0.5;
	run(&s, &normal, 1); /* switch still off at the start of this step */
	assert_false(s.high_level);
	assert_true(s.valve_actual);
	run(&s, &normal, 1); /* level now at or above the trip point */
	assert_true(s.high_level);
	assert_false(s.valve_actual); /* commanded open, interlocked closed */
	assert_true(s.inflow_lps == 0.0);
	/* Draining to the reset point: still on until below 4400. */
	s.level_mm = PHYS_HLS_OFF_MM;
	run(&s, &normal, 1);
	assert_true(s.high_level);
	s.level_mm = PHYS_HLS_OFF_MM - 0.1;
	run(&s, &normal, 1);
	assert_false(s.high_level);
	assert_true(s.valve_actual);
	/* It can never overflow, whatever the valve is told. */
	s.level_mm = PHYS_TANK_HEIGHT_MM;
	run(&s, &normal, 100);
	assert_true(s.level_mm <= PHYS_TANK_HEIGHT_MM);
}

static void test_physics_conc_follows_setpoint(void **state)
{
	(void)state;
	struct physics_state s;
	physics_init(&s);
	struct physics_inputs in = normal;
	in.naoh_sp_ppm = 150;
	/* One time constant: 63 % of the step. */
	run(&s, &in, (int)(PHYS_TAU_CONC_S * 10));
	assert_true(fabs(s.conc_ppm - (150.0 - 50.0 * exp(-1.0))) < 1e-6);
	/* Monotone and never past the target. */
	double prev = s.conc_ppm;
	for (int i = 0; i < 600; i++) {
		run(&s, &in, 1);
		assert_true(s.conc_ppm >= prev && s.conc_ppm <= 150.0);
		prev = s.conc_ppm;
	}
	assert_true(fabs(s.conc_ppm - 150.0) < 0.01);
	/* pH follows the concentration, more alkaline. */
	assert_true(fabs(s.ph - physics_ph_for_conc(150.0)) < 0.01);
	assert_true(physics_ph_for_conc(150.0) > physics_ph_for_conc(100.0));
	/* A long step cannot overshoot either. */
	in.naoh_sp_ppm = 80;
	assert_int_equal(physics_step(&s, &in, PHYS_DT_MAX_S), 0);
	assert_true(s.conc_ppm >= 80.0 && s.conc_ppm < 150.0);
}

static void test_physics_ph_curve(void **state)
{
	(void)state;
	assert_true(physics_ph_for_conc(0.0) == 7.0);
	assert_true(physics_ph_for_conc(-5.0) == 7.0);
	assert_true(physics_ph_for_conc(NAN) == 7.0);
	double prev = 7.0;
	for (double c = 1.0; c < 70000.0; c *= 1.5) {
		double ph = physics_ph_for_conc(c);
		assert_true(ph > prev && ph <= 14.0);
		prev = ph;
	}
	/* The Oldsmar value would make the water caustic. */
	assert_true(physics_ph_for_conc(11100.0) > 10.0);
	assert_true(physics_ph_for_conc(INFINITY) == 14.0);
}

static void test_physics_clamps(void **state)
{
	(void)state;
	/* The PLC accepts 11100 ppm; the pump at 50 % holds at most 7500. */
	struct physics_inputs in = normal;
	in.naoh_sp_ppm = 11100;
	assert_true(physics_conc_target(&in) == 50 * PHYS_PUMP_PPM_PER_PCT);
	/* At full speed it can reach the attacker's value. */
	in.pump_speed_pct = 100;
	assert_true(physics_conc_target(&in) == 11100.0);
	/* Speed beyond 100 % is accepted by the PLC and clamped by the pump. */
	in.pump_speed_pct = 65535;
	in.naoh_sp_ppm = 65535;
	assert_true(physics_conc_target(&in) == 100 * PHYS_PUMP_PPM_PER_PCT);
	struct physics_state s;
	physics_init(&s);
	run(&s, &in, 1);
	assert_true(s.pump_speed_pct == 100.0);
	in.pump_speed_pct = 0;
	assert_true(physics_conc_target(&in) == 0.0);
	/* Register outputs saturate instead of wrapping. */
	s.conc_ppm = 1e9;
	s.ph = 14.0;
	struct physics_outputs o;
	physics_outputs(&s, &o);
	assert_int_equal(o.naoh_conc_ppm, 65535);
	assert_int_equal(o.ph_x100, 1400);
}

static void test_physics_estop(void **state)
{
	(void)state;
	struct physics_inputs in = normal;
	in.estop = true;
	assert_true(physics_conc_target(&in) == 0.0);
	struct physics_state s;
	physics_init(&s);
	run(&s, &in, 1);
	assert_true(s.pump_speed_pct == 0.0);
	run(&s, &in, 200);
	assert_true(s.conc_ppm < 5.0); /* no dosing: it washes out */
	/* The bypass defeats the E-stop: the reason no layer may write it. */
	in.estop_bypass = true;
	assert_true(physics_conc_target(&in) == 100.0);
	run(&s, &in, 1);
	assert_true(s.pump_speed_pct == 50.0);
	/* The run coil off stops it regardless. */
	in.pump_run = false;
	assert_true(physics_conc_target(&in) == 0.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_physics_init),
		cmocka_unit_test(test_physics_step_bounds),
		cmocka_unit_test(test_physics_level),
		cmocka_unit_test(test_physics_high_level_interlock),
		cmocka_unit_test(test_physics_conc_follows_setpoint),
		cmocka_unit_test(test_physics_ph_curve),
		cmocka_unit_test(test_physics_clamps),
		cmocka_unit_test(test_physics_estop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
