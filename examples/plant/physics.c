/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>

#include "physics.h"

static double clamp(double v, double lo, double hi)
{
	if (v < lo)
		return lo;
	if (v > hi)
		return hi;
	return v;
}

/* First-order lag, exact for a constant target over the step: unlike an
 * Euler step it cannot overshoot whatever the step length. */
static double lag(double y, double target, double dt_s, double tau_s)
{
	return target + (y - target) * exp(-dt_s / tau_s);
}

static uint16_t to_u16(double v)
{
	return (uint16_t)lround(clamp(v, 0.0, 65535.0));
}

void physics_init(struct physics_state *s)
{
	*s = (struct physics_state){
		.level_mm = 2500.0,
		.conc_ppm = 100.0,
		.ph = physics_ph_for_conc(100.0),
		.pump_speed_pct = 50.0,
		.inflow_lps = PHYS_INFLOW_LPS,
		.outflow_lps = PHYS_DEMAND_LPS,
		.high_level = false,
		.valve_actual = true,
	};
}

double physics_ph_for_conc(double conc_ppm)
{
	if (!(conc_ppm > 0.0))
		return 7.0;
	return clamp(7.0 + 1.5 * log10(1.0 + conc_ppm / 50.0), 0.0, 14.0);
}

static double pump_speed(const struct physics_inputs *in)
{
	/* The E-stop stops the pump unless someone bypassed it: the reason the
	 * bypass coil must stay out of every layer's reach. */
	if (!in->pump_run || (in->estop && !in->estop_bypass))
		return 0.0;
	return clamp((double)in->pump_speed_pct, 0.0, 100.0);
}

double physics_conc_target(const struct physics_inputs *in)
{
	double capacity = pump_speed(in) * PHYS_PUMP_PPM_PER_PCT;
	return fmin((double)in->naoh_sp_ppm, capacity);
}

int physics_step(struct physics_state *s, const struct physics_inputs *in, double dt_s)
{
	if (!(dt_s > 0.0 && dt_s <= PHYS_DT_MAX_S))
		return -EINVAL;

	/* The switch acts on the level at the start of the step; its
	 * hysteresis keeps the interlock from chattering at the trip point. */
	if (s->level_mm >= PHYS_HLS_ON_MM)
		s->high_level = true;
	else if (s->level_mm < PHYS_HLS_OFF_MM)
		s->high_level = false;

	s->valve_actual = in->valve_open && !s->high_level;
	s->inflow_lps = s->valve_actual ? PHYS_INFLOW_LPS : 0.0;
	s->outflow_lps = s->level_mm > 0.0 ? PHYS_DEMAND_LPS : 0.0;

	double litres_per_mm = PHYS_TANK_AREA_M2; /* 1 m2 x 1 mm = 1 l */
	double dlevel = (s->inflow_lps - s->outflow_lps) * dt_s / litres_per_mm;
	s->level_mm = clamp(s->level_mm + dlevel, 0.0, PHYS_TANK_HEIGHT_MM);
	if (s->level_mm <= 0.0)
		s->outflow_lps = 0.0;

	s->pump_speed_pct = pump_speed(in);
	/* With no flow through the skid nothing is mixed or measured anew:
	 * the concentration holds. */
	if (s->outflow_lps > 0.0)
		s->conc_ppm = lag(s->conc_ppm, physics_conc_target(in), dt_s, PHYS_TAU_CONC_S);
	s->ph = lag(s->ph, physics_ph_for_conc(s->conc_ppm), dt_s, PHYS_TAU_PH_S);
	return 0;
}

void physics_outputs(const struct physics_state *s, struct physics_outputs *ret_out)
{
	*ret_out = (struct physics_outputs){
		.level_mm = to_u16(s->level_mm),
		.ph_x100 = to_u16(s->ph * 100.0),
		.naoh_conc_ppm = to_u16(s->conc_ppm),
		.pump_speed_fb = to_u16(s->pump_speed_pct),
		.inflow_lps_x10 = to_u16(s->inflow_lps * 10.0),
		.high_level = s->high_level,
	};
}
