/* SPDX-License-Identifier: MIT */
/*
 * plant-io: the demo plant's Modbus driver layer.  It has no network of its
 * own: it asks the broker for the `plc` connect resource, which the broker
 * connects to the address in the policy and passes as an fd, and speaks
 * Modbus TCP on that fd (mbclient.c checks every answer).  Every 250 ms it
 * reads each register area of the tag table with one request, publishes
 * tag.changed for every tag once after connecting and then on each change,
 * and serves tag.read and tag.write (examples/plant/MESSAGES.md has the
 * message contract).
 *
 * One request is in flight at a time: a PLC answers in order anyway, and a
 * single outstanding transaction makes every answer checkable against
 * exactly one request.  When the connection fails (refused, closed, an
 * answer that breaks the protocol, no answer within a second) every tag is
 * marked stale, pending writes fail with tag.unavailable, and the resource
 * is asked for again with backoff (1 s doubling to 5 s; the policy allows
 * one request a second).
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "layer-util.h"
#include "mbclient.h"
#include "tags.h"

#define PROG	       "plant-io"
#define TICK_MS	       250  /* poll period: every tag every 250 ms */
#define ANSWER_MS      1000 /* a PLC that has not answered by then is gone */
#define BACKOFF_MIN_MS 1000 /* the policy's rate 1/s on conduit.connect */
#define BACKOFF_MAX_MS 5000
#define JOBS_MAX       32 /* writes (ui: 2/s by policy) plus one poll per area */
#define UNIT_ID	       1

enum conn {
	CONN_DOWN,	 /* waiting for the next attempt */
	CONN_ASKING,	 /* conduit.connect sent */
	CONN_CONNECTING, /* fd received, TCP connect still in progress */
	CONN_UP,
};

enum job_kind {
	JOB_POLL,     /* read one whole area */
	JOB_WRITE,    /* write one tag (FC 5/6), then read it back */
	JOB_READBACK, /* read one tag to answer the tag.write call */
};

struct job {
	enum job_kind kind;
	enum tag_area area; /* JOB_POLL */
	size_t tag;	    /* JOB_WRITE, JOB_READBACK */
	uint16_t raw;	    /* JOB_WRITE */
	cdt_msg *call;	    /* JOB_WRITE, JOB_READBACK: the tag.write being answered */
};

struct tagval {
	double value;
	uint64_t ts_ms;
	bool valid;	/* read at least once */
	bool good;	/* from the last poll of a live connection */
	bool announced; /* published since the connection came up */
};

struct io {
	cdt_layer *layer;
	int tfd;
	int plc;
	enum conn conn;
	int64_t conn_since;   /* when CONNECTING began */
	int64_t next_attempt; /* CONN_DOWN: when to ask again */
	int backoff_ms;
	struct job jobs[JOBS_MAX];
	size_t jhead, jlen;
	bool busy; /* jobs[jhead] is in flight as req */
	struct mbc_request req;
	int64_t sent_at;
	uint16_t tid;
	uint8_t tx[MBC_REQ_LEN];
	size_t txoff, txlen;
	uint8_t rx[MBC_ADU_MAX];
	size_t rxlen;
	struct tagval tags[TAG_COUNT];
};

static const uint8_t area_fc[TAG_AREA_COUNT] = {
	[TAG_AREA_COIL] = MBC_FC_READ_COILS,
	[TAG_AREA_DI] = MBC_FC_READ_DISCRETE,
	[TAG_AREA_HR] = MBC_FC_READ_HOLDING,
	[TAG_AREA_IR] = MBC_FC_READ_INPUT,
};

static void answer_error(struct io *io, cdt_msg *call, const char *name)
{
	int r = cdt_layer_reply_error(io->layer, call, name);

	if (r < 0)
		lu_warn(PROG, "answering tag.write", r);
	cdt_msg_free(call);
}

static void publish_changed(struct io *io, size_t id)
{
	const struct tag_def *t = tags_get(id);
	cdt_msg *ev = NULL;
	int r;

	if ((r = cdt_msg_new(CDT_KIND_EVENT, 0, "tag.changed", &ev)) < 0 ||
	    (r = cdt_msg_add_string(ev, "tag", t->name, strlen(t->name))) < 0 ||
	    (r = cdt_msg_add_double(ev, "value", io->tags[id].value)) < 0 ||
	    (r = cdt_msg_add_u64(ev, "ts_ms", io->tags[id].ts_ms)) < 0 ||
	    (r = cdt_layer_publish(io->layer, ev)) < 0)
		lu_warn(PROG, "publishing tag.changed", r);
	cdt_msg_free(ev);
}

/* A fresh reading of tag @id: cache it, publish it when it is news. */
static void tag_update(struct io *io, size_t id, uint16_t raw, uint64_t ts)
{
	struct tagval *v = &io->tags[id];
	double value = tags_raw_to_eng(tags_get(id), raw);
	bool news = !v->announced || !v->valid || value != v->value;

	v->value = value;
	v->ts_ms = ts;
	v->valid = v->good = true;
	if (news) {
		v->announced = true;
		publish_changed(io, id);
	}
}

static void schedule_retry(struct io *io)
{
	io->conn = CONN_DOWN;
	io->next_attempt = lu_mono_ms() + io->backoff_ms;
	io->backoff_ms = io->backoff_ms >= BACKOFF_MAX_MS / 2 ? BACKOFF_MAX_MS : io->backoff_ms * 2;
}

/* The connection is unusable: drop it, fail what waited on it, go stale. */
static void conn_fail(struct io *io, const char *why)
{
	bool was_up = io->conn == CONN_UP;

	if (io->plc >= 0)
		close(io->plc);
	io->plc = -1;
	for (; io->jlen; io->jlen--, io->jhead = (io->jhead + 1) % JOBS_MAX) {
		struct job *j = &io->jobs[io->jhead];
		if (j->call)
			answer_error(io, j->call, "tag.unavailable");
		j->call = NULL;
	}
	io->jhead = 0;
	io->busy = false;
	io->rxlen = io->txlen = io->txoff = 0;
	for (size_t i = 0; i < TAG_COUNT; i++) {
		io->tags[i].good = false;
		io->tags[i].announced = false;
	}
	schedule_retry(io);
	fprintf(stderr, "%s: PLC %s: %s; tags stale, retrying in %d ms\n", PROG,
		was_up ? "connection lost" : "not reachable", why,
		(int)(io->next_attempt - lu_mono_ms()));
}

static bool job_push(struct io *io, const struct job *j, bool front)
{
	if (io->jlen == JOBS_MAX)
		return false;
	if (front) {
		io->jhead = (io->jhead + JOBS_MAX - 1) % JOBS_MAX;
		io->jobs[io->jhead] = *j;
	} else {
		io->jobs[(io->jhead + io->jlen) % JOBS_MAX] = *j;
	}
	io->jlen++;
	return true;
}

static struct job job_pop(struct io *io)
{
	struct job j = io->jobs[io->jhead];

	io->jobs[io->jhead].call = NULL;
	io->jhead = (io->jhead + 1) % JOBS_MAX;
	io->jlen--;
	return j;
}

/* Send the next job's request when the line is free. */
static void kick(struct io *io)
{
	const struct job *j;
	const struct tag_def *t;
	int r;

	if (io->conn != CONN_UP || io->busy || io->jlen == 0)
		return;
	j = &io->jobs[io->jhead];
	io->tid++;
	switch (j->kind) {
	case JOB_POLL:
		r = mbc_read_request(&io->req, io->tid, UNIT_ID, area_fc[j->area], 0,
				     tags_area_size(j->area));
		break;
	case JOB_READBACK:
		t = tags_get(j->tag);
		r = mbc_read_request(&io->req, io->tid, UNIT_ID, area_fc[t->area], t->addr, 1);
		break;
	case JOB_WRITE:
		t = tags_get(j->tag);
		r = mbc_write_request(&io->req, io->tid, UNIT_ID,
				      t->area == TAG_AREA_COIL ? MBC_FC_WRITE_SINGLE_COIL
							       : MBC_FC_WRITE_SINGLE_REGISTER,
				      t->addr, j->raw);
		break;
	default:
		r = -EINVAL;
	}
	if (r < 0) {
		/* The tag table itself is wrong: nothing a PLC could fix. */
		struct job bad = job_pop(io);
		if (bad.call)
			answer_error(io, bad.call, "tag.unavailable");
		fprintf(stderr, "%s: cannot build a request: %s\n", PROG, strerror(-r));
		return;
	}
	mbc_encode(&io->req, io->tx);
	io->txoff = 0;
	io->txlen = MBC_REQ_LEN;
	io->busy = true;
	io->sent_at = lu_mono_ms();
}

static void on_answer(struct io *io)
{
	uint16_t values[MBC_BITS_MAX];
	struct job j;
	uint64_t ts = lu_real_ms();
	int r = mbc_parse_response(&io->req, io->rx, io->rxlen, values);

	if (r < 0) {
		conn_fail(io, "malformed or mismatched answer");
		return;
	}
	io->busy = false;
	io->rxlen = 0;
	j = job_pop(io);
	if (r > 0) {
		fprintf(stderr, "%s: PLC exception %d to function %u at %u\n", PROG, r,
			(unsigned)io->req.fc, (unsigned)io->req.addr);
		if (j.kind == JOB_POLL)
			for (size_t i = 0; i < TAG_COUNT; i++)
				if (tags_get(i)->area == j.area)
					io->tags[i].good = false;
		if (j.call)
			answer_error(io, j.call, "tag.unavailable");
		kick(io);
		return;
	}
	switch (j.kind) {
	case JOB_POLL:
		for (size_t i = 0; i < TAG_COUNT; i++) {
			const struct tag_def *t = tags_get(i);
			if (t->area == j.area && t->addr < io->req.count)
				tag_update(io, i, values[t->addr], ts);
		}
		break;
	case JOB_WRITE:
		/* Answer with what the PLC holds now, not with what we sent. */
		j.kind = JOB_READBACK;
		if (!job_push(io, &j, true))
			answer_error(io, j.call, "tag.unavailable");
		break;
	case JOB_READBACK: {
		const struct tag_def *t = tags_get(j.tag);
		cdt_msg *reply = NULL;
		tag_update(io, j.tag, values[0], ts);
		if ((r = cdt_msg_new(CDT_KIND_REPLY, cdt_msg_call_id(j.call), NULL, &reply)) < 0 ||
		    (r = cdt_msg_add_string(reply, "tag", t->name, strlen(t->name))) < 0 ||
		    (r = cdt_msg_add_double(reply, "value", io->tags[j.tag].value)) < 0 ||
		    (r = cdt_layer_reply(io->layer, j.call, reply)) < 0)
			lu_warn(PROG, "answering tag.write", r);
		cdt_msg_free(reply);
		cdt_msg_free(j.call);
		break;
	}
	}
	kick(io);
}

static void plc_readable(struct io *io)
{
	size_t want;
	ssize_t n = recv(io->plc, io->rx + io->rxlen, sizeof(io->rx) - io->rxlen, 0);

	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		conn_fail(io, strerror(errno));
		return;
	}
	if (n == 0) {
		conn_fail(io, "closed by the PLC");
		return;
	}
	io->rxlen += (size_t)n;
	if (!io->busy) {
		conn_fail(io, "bytes nobody asked for");
		return;
	}
	int r = mbc_frame_len(io->rx, io->rxlen, &want);
	if (r == -EAGAIN)
		return;
	if (r < 0 || io->rxlen > want) {
		/* One transaction in flight: anything past its answer is not
		 * an answer to anything. */
		conn_fail(io, "malformed answer");
		return;
	}
	if (io->rxlen == want)
		on_answer(io);
}

static void plc_writable(struct io *io)
{
	if (io->conn == CONN_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(io->plc, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			conn_fail(io, strerror(err));
			return;
		}
		io->conn = CONN_UP;
		io->backoff_ms = BACKOFF_MIN_MS;
		fprintf(stderr, "%s: PLC connected\n", PROG);
		return;
	}
	while (io->txoff < io->txlen) {
		/* MSG_NOSIGNAL: a PLC that went away is an error, not SIGPIPE. */
		ssize_t n = send(io->plc, io->tx + io->txoff, io->txlen - io->txoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			conn_fail(io, strerror(errno));
			return;
		}
		io->txoff += (size_t)n;
	}
}

static void on_connect_reply(cdt_layer *layer, int result, cdt_msg *reply, void *userdata)
{
	struct io *io = userdata;
	int fd, r;

	(void)layer;
	if (result == -EREMOTEIO) {
		conn_fail(io, cdt_msg_name(reply));
		return;
	}
	if (result < 0) {
		conn_fail(io, cdt_strerror(result));
		return;
	}
	r = cdt_msg_take_fd(reply, "fd", &fd);
	if (r < 0) {
		conn_fail(io, "the broker's answer has no fd");
		return;
	}
	io->plc = fd;
	io->conn = CONN_CONNECTING;
	io->conn_since = lu_mono_ms();
}

static void ask_connect(struct io *io)
{
	cdt_msg *call = NULL;
	int r;

	/* call_id 1 is a placeholder: the library picks the real one. */
	if ((r = cdt_msg_new(CDT_KIND_CALL, 1, "conduit.connect", &call)) < 0 ||
	    (r = cdt_msg_add_string(call, "name", "plc", 3)) < 0 ||
	    (r = cdt_layer_call_async(io->layer, call, on_connect_reply, io)) < 0) {
		cdt_msg_free(call);
		conn_fail(io, cdt_strerror(r));
		return;
	}
	cdt_msg_free(call);
	io->conn = CONN_ASKING;
}

static void on_tick(struct io *io)
{
	int64_t now = lu_mono_ms();

	switch (io->conn) {
	case CONN_DOWN:
		if (now >= io->next_attempt)
			ask_connect(io);
		return;
	case CONN_ASKING:
		return; /* the broker's own deadline answers every call */
	case CONN_CONNECTING:
		if (now - io->conn_since > ANSWER_MS)
			conn_fail(io, "connect timed out");
		return;
	case CONN_UP:
		break;
	}
	if (io->busy && now - io->sent_at > ANSWER_MS) {
		conn_fail(io, "no answer");
		return;
	}
	/* One poll per area, unless the last round is still queued. */
	for (int a = 0; a < TAG_AREA_COUNT; a++) {
		bool queued = false;
		for (size_t i = 0; i < io->jlen; i++) {
			const struct job *j = &io->jobs[(io->jhead + i) % JOBS_MAX];
			queued |= j->kind == JOB_POLL && j->area == (enum tag_area)a;
		}
		if (!queued && tags_area_size((enum tag_area)a) > 0) {
			const struct job j = {.kind = JOB_POLL, .area = (enum tag_area)a};
			(void)job_push(io, &j, false);
		}
	}
	kick(io);
}

static void on_tag_read(cdt_layer *layer, cdt_msg *call, void *userdata)
{
	struct io *io = userdata;
	const char *name, *q;
	size_t len, id;
	cdt_msg *reply = NULL;
	int r;

	if (cdt_msg_get_string(call, "tag", &name, &len) < 0 || tags_find(name, len, &id) < 0) {
		r = cdt_layer_reply_error(layer, call, "tag.unknown");
	} else if (!io->tags[id].valid) {
		r = cdt_layer_reply_error(layer, call, "tag.unavailable");
	} else {
		q = io->tags[id].good && io->conn == CONN_UP ? "good" : "stale";
		if ((r = cdt_msg_new(CDT_KIND_REPLY, cdt_msg_call_id(call), NULL, &reply)) == 0 &&
		    (r = cdt_msg_add_string(reply, "tag", name, len)) == 0 &&
		    (r = cdt_msg_add_double(reply, "value", io->tags[id].value)) == 0 &&
		    (r = cdt_msg_add_u64(reply, "ts_ms", io->tags[id].ts_ms)) == 0 &&
		    (r = cdt_msg_add_string(reply, "quality", q, strlen(q))) == 0)
			r = cdt_layer_reply(layer, call, reply);
	}
	if (r < 0)
		lu_warn(PROG, "answering tag.read", r);
	cdt_msg_free(reply);
	cdt_msg_free(call);
}

/* tag.write: the policy already decided; check again here (defence in
 * depth): the tag exists, is writable, and the value is in its range. */
static void on_tag_write(cdt_layer *layer, cdt_msg *call, void *userdata)
{
	struct io *io = userdata;
	const struct tag_def *t;
	const char *name;
	size_t len, id;
	double value;
	uint16_t raw;

	(void)layer;
	if (cdt_msg_get_string(call, "tag", &name, &len) < 0 || tags_find(name, len, &id) < 0) {
		answer_error(io, call, "tag.unknown");
		return;
	}
	t = tags_get(id);
	if (t->readonly) {
		answer_error(io, call, "tag.readonly");
		return;
	}
	/* A bool tag takes exactly 0 or 1: 0.5 is in its range but is no
	 * coil state. */
	if (lu_get_number(call, "value", &value) < 0 || !tags_in_range(t, value) ||
	    (t->type == TAG_TYPE_BOOL && value != 0.0 && value != 1.0) ||
	    tags_eng_to_raw(t, value, &raw) < 0) {
		answer_error(io, call, "tag.range");
		return;
	}
	const struct job j = {.kind = JOB_WRITE, .tag = id, .raw = raw, .call = call};
	if (io->conn != CONN_UP || !job_push(io, &j, false)) {
		answer_error(io, call, "tag.unavailable");
		return;
	}
	fprintf(stderr, "%s: write %s = %g\n", PROG, t->name, value);
	kick(io);
}

static int io_loop(struct io *io)
{
	for (;;) {
		struct pollfd p[3] = {
			{.fd = cdt_layer_fd(io->layer),
			 .events = POLLIN | (cdt_layer_want_write(io->layer) ? POLLOUT : 0)},
			{.fd = io->tfd, .events = POLLIN},
			{.fd = io->plc, .events = 0},
		};
		int r;

		if (io->conn == CONN_CONNECTING)
			p[2].events = POLLOUT;
		else if (io->conn == CONN_UP)
			p[2].events = POLLIN | (io->txoff < io->txlen ? POLLOUT : 0);
		if (poll(p, io->plc >= 0 ? 3 : 2, cdt_layer_want_dispatch(io->layer) ? 0 : -1) <
			    0 &&
		    errno != EINTR)
			return -errno;
		if (p[1].revents & POLLIN) {
			uint64_t ticks;
			if (read(io->tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
				return -errno;
			on_tick(io);
		}
		if (io->plc >= 0 && p[2].fd == io->plc && p[2].revents) {
			if (io->conn == CONN_CONNECTING || (p[2].revents & POLLOUT))
				plc_writable(io);
			if (io->conn == CONN_UP && (p[2].revents & (POLLIN | POLLHUP | POLLERR)))
				plc_readable(io);
		}
		/* Requests queued by the tick, an answer or a handler go out
		 * now rather than at the next POLLOUT. */
		if (io->conn == CONN_UP && io->txoff < io->txlen)
			plc_writable(io);
		r = cdt_layer_dispatch(io->layer);
		if (r == -CDT_E_CLOSED)
			return 0;
		if (r < 0)
			return r;
	}
}

int main(void)
{
	const struct cdt_layer_options opts = {
		.provide = "tag.read tag.write",
		.publish = "tag.changed",
	};
	static struct io io = {.tfd = -1, .plc = -1, .backoff_ms = BACKOFF_MIN_MS};
	const struct itimerspec period = {
		.it_interval = {0, TICK_MS * 1000000L},
		.it_value = {0, 1000000L}, /* the first tick at once: connect */
	};
	int r;

	r = cdt_init();
	if (r < 0)
		goto out;
	io.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (io.tfd < 0 || timerfd_settime(io.tfd, 0, &period, NULL) < 0) {
		r = -errno;
		goto out;
	}
	r = cdt_layer_open(&opts, &io.layer);
	if (r < 0)
		goto out;
	if ((r = cdt_layer_serve(io.layer, "tag.read", on_tag_read, &io)) < 0 ||
	    (r = cdt_layer_serve(io.layer, "tag.write", on_tag_write, &io)) < 0)
		goto out;
	r = io_loop(&io);
out:
	if (r < 0)
		fprintf(stderr, "%s: %s\n", PROG, cdt_strerror(r));
	for (size_t i = 0; i < io.jlen; i++)
		cdt_msg_free(io.jobs[(io.jhead + i) % JOBS_MAX].call);
	if (io.plc >= 0)
		close(io.plc);
	if (io.tfd >= 0)
		close(io.tfd);
	cdt_layer_free(io.layer);
	return r < 0 ? 1 : 0;
}
