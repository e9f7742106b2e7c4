/* SPDX-License-Identifier: MIT */
/*
 * plant-hist: the demo plant's historian.  Appends every tag.changed sample
 * to the history file through hist-store.c and serves hist.query from the
 * last hour of samples it keeps in memory (the message contract is in
 * examples/plant/MESSAGES.md).
 *
 *   plant-hist [HISTORY-FILE]     (default /var/lib/conduit/plant/history.log)
 *
 * The layer cannot open files: it asks the broker for the file with
 * conduit.open, and the policy opens it `append` (O_WRONLY | O_APPEND).  So
 * a compromised historian can add records but never rewrite, truncate or
 * read back what was recorded; queries never need the file, because
 * hist.query looks back at most an hour, which memory holds.  When the file
 * cannot be had or written, the historian says so once and keeps serving
 * queries from memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hist-store.h"
#include "layer-util.h"
#include "tags.h"

#define PROG		"plant-hist"
#define DEFAULT_FILE	"/var/lib/conduit/plant/history.log"
#define WINDOW_MAX_S	3600
#define POINTS_MAX	3600
#define POINT_SIZE	16
/* tag.changed comes at most once per poll (250 ms) per tag: 14,400 an hour. */
#define RING		16384
#define OPEN_TIMEOUT_MS 5000

struct point {
	uint64_t ts_ms;
	double value;
};

struct ring {
	struct point p[RING];
	size_t head, len; /* oldest at head */
};

struct hist {
	int fd; /* append-only history file, or -1 */
	bool write_failed;
	struct ring ring[TAG_COUNT];
};

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void ring_add(struct ring *r, uint64_t ts, double value)
{
	if (r->len == RING) {
		r->head = (r->head + 1) % RING; /* drop the oldest */
		r->len--;
	}
	r->p[(r->head + r->len) % RING] = (struct point){ts, value};
	r->len++;
}

static const struct point *ring_at(const struct ring *r, size_t i)
{
	return &r->p[(r->head + i) % RING];
}

static void on_tag_changed(cdt_layer *layer, const cdt_msg *event, void *userdata)
{
	struct hist *h = userdata;
	const char *name;
	size_t len, id;
	double value;
	uint64_t ts;
	int r;

	(void)layer;
	if (cdt_msg_get_string(event, "tag", &name, &len) < 0 || tags_find(name, len, &id) < 0 ||
	    lu_get_number(event, "value", &value) < 0 || !isfinite(value))
		return; /* unknown tag or not a finite number: nothing to record */
	if (cdt_msg_get_u64(event, "ts_ms", &ts) < 0 || ts > INT64_MAX)
		ts = lu_real_ms();
	ring_add(&h->ring[id], ts, value);
	if (h->fd < 0 || h->write_failed)
		return;
	const struct hist_sample s = {.tag = (uint32_t)id, .t_ms = (int64_t)ts, .value = value};
	r = hist_append(h->fd, &s);
	if (r < 0) {
		/* Full disk or the fsize limit: memory still serves queries. */
		h->write_failed = true;
		fprintf(stderr, "%s: history file: %s; no more appends\n", PROG, strerror(-r));
	}
}

/* Points of @r from @from_ms on, oldest first, at most POINTS_MAX.  The
 * value that held at @from_ms (the last sample before it) comes first,
 * stamped @from_ms: io publishes only changes, so a steady tag would
 * otherwise have an empty window. */
static size_t query_points(const struct ring *r, uint64_t from_ms, uint8_t *out)
{
	size_t first = r->len, n, count;

	for (size_t i = 0; i < r->len; i++)
		if (ring_at(r, i)->ts_ms >= from_ms) {
			first = i;
			break;
		}
	bool carry = first > 0 && (first == r->len || ring_at(r, first)->ts_ms > from_ms);
	n = r->len - first + (carry ? 1 : 0);
	count = n > POINTS_MAX ? POINTS_MAX : n;
	for (size_t k = 0; k < count; k++) {
		/* Downsample by an even stride that keeps the first and last. */
		size_t j = count == n ? k : (count == 1 ? 0 : k * (n - 1) / (count - 1));
		struct point p;
		if (carry && j == 0)
			p = (struct point){from_ms, ring_at(r, first - 1)->value};
		else
			p = *ring_at(r, first + j - (carry ? 1 : 0));
		uint64_t bits;
		memcpy(&bits, &p.value, sizeof(bits));
		put_le64(out + k * POINT_SIZE, p.ts_ms);
		put_le64(out + k * POINT_SIZE + 8, bits);
	}
	return count;
}

static void on_query(cdt_layer *layer, cdt_msg *call, void *userdata)
{
	const struct hist *h = userdata;
	static uint8_t out[POINTS_MAX * POINT_SIZE];
	const char *name;
	size_t len, id, count;
	uint64_t seconds, now = lu_real_ms();
	cdt_msg *reply = NULL;
	int r;

	if (cdt_msg_get_string(call, "tag", &name, &len) < 0 || tags_find(name, len, &id) < 0) {
		r = cdt_layer_reply_error(layer, call, "hist.unknown");
	} else if (cdt_msg_get_u64(call, "seconds", &seconds) < 0 || seconds < 1 ||
		   seconds > WINDOW_MAX_S) {
		r = cdt_layer_reply_error(layer, call, "hist.range");
	} else {
		count = query_points(&h->ring[id], now - seconds * 1000, out);
		if ((r = cdt_msg_new(CDT_KIND_REPLY, cdt_msg_call_id(call), NULL, &reply)) == 0 &&
		    (r = cdt_msg_add_string(reply, "tag", name, len)) == 0 &&
		    (r = cdt_msg_add_u64(reply, "count", count)) == 0 &&
		    (r = cdt_msg_add_bytes(reply, "points", out, count * POINT_SIZE)) == 0)
			r = cdt_layer_reply(layer, call, reply);
	}
	if (r < 0)
		lu_warn(PROG, "answering hist.query", r);
	cdt_msg_free(reply);
	cdt_msg_free(call);
}

/* Check what the broker passed before trusting it: a regular file, open
 * write-only with O_APPEND, so no record can overwrite another. */
static int check_append_fd(int fd)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -ENOTSUP;
	if ((fl & O_ACCMODE) != O_WRONLY || !(fl & O_APPEND))
		return -EINVAL;
	return 0;
}

static int open_history(cdt_layer *layer, const char *path, int *ret_fd)
{
	cdt_msg *call = NULL, *reply = NULL;
	int fd = -1, r;

	if ((r = cdt_msg_new(CDT_KIND_CALL, 1, "conduit.open", &call)) < 0 ||
	    (r = cdt_msg_add_string(call, "path", path, strlen(path))) < 0)
		goto out;
	r = cdt_layer_call(layer, call, OPEN_TIMEOUT_MS, &reply);
	if (r == -EREMOTEIO)
		fprintf(stderr, "%s: conduit.open %s: %s\n", PROG, path,
			cdt_layer_error_name(layer));
	if (r < 0)
		goto out;
	if ((r = cdt_msg_take_fd(reply, "fd", &fd)) < 0)
		goto out;
	if ((r = check_append_fd(fd)) < 0) {
		close(fd);
		goto out;
	}
	*ret_fd = fd;
out:
	cdt_msg_free(call);
	cdt_msg_free(reply);
	return r;
}

int main(int argc, char **argv)
{
	const struct cdt_layer_options opts = {.provide = "hist.query"};
	const char *path = argc > 1 ? argv[1] : DEFAULT_FILE;
	static struct hist h; /* zero: .bss, not 3 MB of .data */
	cdt_layer *layer = NULL;
	int r;

	h.fd = -1;
	/* Past the policy's fsize limit a write must fail with EFBIG, which
	 * this layer survives, rather than kill it with SIGXFSZ. */
	signal(SIGXFSZ, SIG_IGN);
	if ((r = cdt_init()) < 0 || (r = cdt_layer_open(&opts, &layer)) < 0)
		goto out;
	r = open_history(layer, path, &h.fd);
	if (r < 0)
		fprintf(stderr, "%s: history file %s unavailable (%s): serving from memory only\n",
			PROG, path, cdt_strerror(r));
	else
		fprintf(stderr, "%s: appending to %s\n", PROG, path);
	if ((r = cdt_layer_serve(layer, "hist.query", on_query, &h)) < 0 ||
	    (r = cdt_layer_subscribe(layer, "tag.changed", on_tag_changed, &h)) < 0)
		goto out;
	r = cdt_layer_run(layer);
out:
	if (r < 0)
		fprintf(stderr, "%s: %s\n", PROG, cdt_strerror(r));
	if (h.fd >= 0)
		close(h.fd);
	cdt_layer_free(layer);
	return r < 0 ? 1 : 0;
}
