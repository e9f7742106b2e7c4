/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "layer-util.h"

int64_t lu_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t lu_real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec < 0)
		return 0; /* a clock before 1970 is a broken clock, not a time */
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int lu_get_number(const cdt_msg *msg, const char *name, double *ret)
{
	struct cdt_arg a;
	int r = cdt_msg_find(msg, name, &a);

	if (r < 0)
		return r;
	switch (a.type) {
	case CDT_TYPE_I64:
		*ret = (double)a.v.i64;
		return 0;
	case CDT_TYPE_U64:
		*ret = (double)a.v.u64;
		return 0;
	case CDT_TYPE_DOUBLE:
		*ret = a.v.d;
		return 0;
	case CDT_TYPE_BOOL:
	case CDT_TYPE_STRING:
	case CDT_TYPE_BYTES:
	case CDT_TYPE_FD:
		break;
	}
	return -EMEDIUMTYPE;
}

void lu_warn(const char *prog, const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, cdt_strerror(err));
}
