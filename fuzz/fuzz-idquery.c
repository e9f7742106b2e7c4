/* SPDX-License-Identifier: MIT */
/*
 * The record an account-lookup child sends its parent (sandbox/idquery.c).
 * The first input byte picks the question, the rest is the child's record.
 * An accepted record must be the one canonical answer to the question (it
 * is rebuilt from the result and compared byte for byte), a refused one
 * must leave the result untouched and say why with a known error.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void question(uint8_t sel, struct idquery_req *req)
{
	memset(req, 0, sizeof(*req));
	if (sel & 0x80) {
		req->kind = IDQUERY_NAMES;
		req->user = "plant";
		req->group = sel & 1 ? "dialout" : NULL;
		return;
	}
	req->kind = IDQUERY_IDS;
	req->n = (size_t)(sel % IDQUERY_IDS_MAX) + 1;
	for (size_t i = 0; i < req->n; i++)
		req->ids[i] = 81920u + (uint32_t)i * 7u;
}

/* The record a correct child writes for this result. */
static void canonical(const struct idquery_req *req, const struct idquery_result *res,
		      struct idquery_wire *w)
{
	memset(w, 0, sizeof(*w));
	w->magic = IDQUERY_MAGIC;
	w->kind = (uint32_t)req->kind;
	if (req->kind == IDQUERY_IDS) {
		w->n = (uint32_t)req->n;
		for (size_t i = 0; i < req->n; i++) {
			w->id[i] = req->ids[i];
			w->state[i] = res->taken[i] ? IDQUERY_PRESENT : IDQUERY_ABSENT;
		}
		return;
	}
	w->n = req->group ? 2 : 1;
	w->state[0] = IDQUERY_PRESENT;
	w->id[0] = (uint32_t)res->uid;
	w->id[1] = (uint32_t)res->gid;
	if (req->group)
		w->state[1] = IDQUERY_PRESENT;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct idquery_result res, sentinel;
	struct idquery_req req;
	struct idquery_wire w;
	int r;

	if (size < 1)
		return 0;
	question(data[0], &req);
	memset(&sentinel, 0xa5, sizeof(sentinel));
	res = sentinel;
	r = idquery_parse(&req, data + 1, size - 1, &res);
	if (r == 0) {
		if (size - 1 != sizeof(w))
			abort();
		canonical(&req, &res, &w);
		if (memcmp(&w, data + 1, sizeof(w)) != 0)
			abort();
		return 0;
	}
	if (memcmp(&res, &sentinel, sizeof(res)) != 0)
		abort();
	if (r != -EPROTO && r != -ENOENT && (r >= 0 || r < -4095))
		abort();
	return 0;
}
