/* SPDX-License-Identifier: MIT */
/* The dosing skid's physics, free of I/O so it can be tested step by step.
 *
 * Raw water flows through inlet valve V-201 into tank T-100 and leaves it at
 * a constant demand; dosing pump P-101 injects NaOH so that the outflow's
 * concentration follows the setpoint, limited by what the pump can deliver at
 * its speed.  Concentration and pH follow with first-order lags.  The PLC
 * accepts any register value; this module clamps what the plant can
 * physically do (a pump cannot run above 100 %, a tank cannot hold more than
 * its height), never what an operator may ask for: that is the policy's job. */
#ifndef PLANT_PHYSICS_H
#define PLANT_PHYSICS_H

#include <stdbool.h>
#include <stdint.h>

#define PHYS_TANK_HEIGHT_MM   5000.0
#define PHYS_TANK_AREA_M2     1.0    /* 1 mm of level is 1 litre */
#define PHYS_INFLOW_LPS	      20.0   /* V-201 fully open */
#define PHYS_DEMAND_LPS	      10.0   /* treated water drawn off while the tank is not empty */
#define PHYS_HLS_ON_MM	      4500.0 /* high-level switch trips at or above */
#define PHYS_HLS_OFF_MM	      4400.0 /* ... and resets below (switch hysteresis) */
#define PHYS_PUMP_PPM_PER_PCT 150.0  /* 100 % speed can hold 15000 ppm in the outflow */
#define PHYS_TAU_CONC_S	      5.0    /* mixing lag of the concentration */
#define PHYS_TAU_PH_S	      3.0    /* pH probe lag */
#define PHYS_DT_MAX_S	      10.0   /* longest step physics_step() accepts */

/* What the PLC's registers command this tick. Raw register values: out of
 * range ones are allowed and clamped by the physics. */
struct physics_inputs {
	uint16_t naoh_sp_ppm;	 /* HR 0 */
	uint16_t pump_speed_pct; /* HR 1 */
	bool pump_run;		 /* coil 0 */
	bool valve_open;	 /* coil 1 */
	bool estop_bypass;	 /* coil 2 */
	bool estop;		 /* DI 1, from the E-stop button */
};

struct physics_state {
	double level_mm;       /* 0..PHYS_TANK_HEIGHT_MM */
	double conc_ppm;       /* >= 0 */
	double ph;	       /* 0..14 */
	double pump_speed_pct; /* actual, 0..100 */
	double inflow_lps;     /* actual, through V-201 */
	double outflow_lps;    /* actual, to the distribution */
	bool high_level;       /* LSH-100 */
	bool valve_actual;     /* V-201 really open (command and no interlock) */
};

/* The register values the PLC publishes (input registers, discrete inputs). */
struct physics_outputs {
	uint16_t level_mm;	 /* IR 0 */
	uint16_t ph_x100;	 /* IR 1 */
	uint16_t naoh_conc_ppm;	 /* IR 2 */
	uint16_t pump_speed_fb;	 /* IR 3 */
	uint16_t inflow_lps_x10; /* IR 4 */
	bool high_level;	 /* DI 0 */
};

/* Steady state at normal operation: level 2500 mm, 100 ppm, pump at 50 %
 * running, valve open. */
void physics_init(struct physics_state *s);

/* The pH the plant settles at for a concentration: an illustrative buffered
 * water curve, 7.0 at 0 ppm rising with log10 of the dose, capped at 14. */
double physics_ph_for_conc(double conc_ppm);

/* Concentration the pump can hold for these inputs (the lag's target):
 * min(setpoint, pump capacity at its clamped speed), 0 when it is stopped. */
double physics_conc_target(const struct physics_inputs *in);

/* Advance the plant by @dt_s seconds (0 < dt_s <= PHYS_DT_MAX_S): 0, or
 * -EINVAL for a bad step (then @s is unchanged). */
int physics_step(struct physics_state *s, const struct physics_inputs *in, double dt_s);

/* Round and clamp the state into register values. */
void physics_outputs(const struct physics_state *s, struct physics_outputs *ret_out);

#endif
