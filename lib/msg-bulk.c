/* SPDX-License-Identifier: MIT */
/*
 * Bulk arguments (docs/protocol.md sections 4.1 and 4.2): a long bytes
 * value a layer sends leaves the message, sealed with a fresh key, either
 * into a BULK frame that the channel sends right behind the message (up to
 * MSG_BULKF_MAX: it fits a ring record) or into a memfd that travels as a
 * passed fd.  The broker forwards either without opening it, so bulk bytes
 * see one AEAD pass per direction, end to end, instead of being opened and
 * sealed again on each hop of the broker.
 *
 * A BULK frame lives in its message's store, header included, exactly as
 * it goes on the wire: the sender seals straight into it, the receiving
 * channel copies the frame in, the broker copies it on unread and the
 * receiver opens it where it lies.
 *
 * The key Ks is fresh random for every value and never reused, so the
 * fixed nonce 0 is safe; the associated data binds the value to its random
 * id and its length.  The channel that carries Ks and the memfd's identity
 * (dev, ino, type) is what authenticates the memfd as the one the sender
 * meant; the seals make its content immutable once it has been sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h> /* memfd_create */
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "buf.h"
#include "frame.h"
#include "msg.h"

#define BULK_SEALS     (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)
#define BULK_TAG_SIZE  16u
#define BULK_AD_PREFIX "conduit-bulk-v1"
#define BULK_AD_SIZE   (sizeof(BULK_AD_PREFIX) - 1 + MSG_BULK_ID_SIZE + 8)

_Static_assert(crypto_aead_aes256gcm_KEYBYTES == MSG_BULK_KEY_SIZE, "bulk key size");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == MSG_BULK_KEY_SIZE, "bulk key size");
_Static_assert(crypto_aead_aes256gcm_ABYTES == BULK_TAG_SIZE, "bulk tag size");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == BULK_TAG_SIZE, "bulk tag size");

static void bulk_ad(const uint8_t *id, uint64_t len, uint8_t ad[BULK_AD_SIZE])
{
	memcpy(ad, BULK_AD_PREFIX, sizeof(BULK_AD_PREFIX) - 1);
	memcpy(ad + sizeof(BULK_AD_PREFIX) - 1, id, MSG_BULK_ID_SIZE);
	le64_put(ad + sizeof(BULK_AD_PREFIX) - 1 + MSG_BULK_ID_SIZE, len);
}

/* AES-256-GCM where the CPU has it, as the channels.  Sender and receiver
 * run on the same machine, so they make the same choice without a field
 * on the wire for it. */
static void bulk_encrypt(const uint8_t *key, const uint8_t *id, const uint8_t *m, size_t len,
			 uint8_t *c)
{
	uint8_t ad[BULK_AD_SIZE];
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES] = {0};

	bulk_ad(id, len, ad);
	if (crypto_aead_aes256gcm_is_available())
		crypto_aead_aes256gcm_encrypt(c, NULL, m, len, ad, sizeof(ad), NULL, nonce, key);
	else
		crypto_aead_xchacha20poly1305_ietf_encrypt(c, NULL, m, len, ad, sizeof(ad), NULL,
							   nonce, key);
}

static int bulk_decrypt(const uint8_t *key, const uint8_t *id, const uint8_t *c, size_t len,
			uint8_t *m)
{
	uint8_t ad[BULK_AD_SIZE];
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES] = {0};
	int r;

	bulk_ad(id, len, ad);
	if (crypto_aead_aes256gcm_is_available())
		r = crypto_aead_aes256gcm_decrypt(m, NULL, NULL, c, len + BULK_TAG_SIZE, ad,
						  sizeof(ad), nonce, key);
	else
		r = crypto_aead_xchacha20poly1305_ietf_decrypt(
			m, NULL, NULL, c, len + BULK_TAG_SIZE, ad, sizeof(ad), nonce, key);
	return r == 0 ? 0 : -CDT_E_AUTH;
}

static struct msg_arg *bulk_find(const cdt_msg *msg, const char *name)
{
	size_t len = strnlen(name, CDT_NAME_MAX + 1);
	for (size_t i = 0; i < msg->nargs; i++) {
		const struct msg_arg *a = &msg->args[i];
		if (a->name_len == len && memcmp(msg->store + a->name_off, name, len) == 0)
			return (struct msg_arg *)a;
	}
	return NULL;
}

bool msg_is_bulk(const cdt_msg *msg, const char *name)
{
	const struct msg_arg *a = msg && name ? bulk_find(msg, name) : NULL;
	return a && (a->type == MSG_TYPE_BULK || a->type == MSG_TYPE_BULKF);
}

/* Add a BULKF argument of a len-byte value with room for its BULK frame
 * behind its key and id; *ret_frame points at the frame, whose header is
 * written. */
static int bulkf_add(cdt_msg *dst, const char *name, uint32_t len, const uint8_t *key_id,
		     uint8_t **ret_frame)
{
	size_t flen = (size_t)len + MSG_BULKF_OVERHEAD;
	struct msg_arg *a;
	int r;

	r = msg_add(dst, name, (enum cdt_type)MSG_TYPE_BULKF, MSG_BULKF_VALUE_SIZE,
		    MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE + flen, &a);
	if (r < 0)
		return r;
	uint8_t *p = dst->store + a->data_off;
	memcpy(p, key_id, MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE);
	p += MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE;
	/* The frame's header says all there is: BULK, no flags, no fds. */
	p[0] = FRAME_VERSION;
	p[1] = FRAME_BULK;
	p[2] = 0;
	p[3] = 0;
	le32_put(p + 4, (uint32_t)(flen - FRAME_HEADER_SIZE));
	a->data_len = len;
	a->v.frame = (uint64_t)(p - dst->store);
	dst->nbulkf++;
	*ret_frame = p;
	return 0;
}

/* The argument of msg's k-th BULK frame. */
static struct msg_arg *bulkf_nth(const cdt_msg *msg, size_t k)
{
	for (size_t i = 0; i < msg->nargs; i++)
		if (msg->args[i].type == MSG_TYPE_BULKF && k-- == 0)
			return &msg->args[i];
	return NULL;
}

/* The next BULKF argument without its frame. */
static struct msg_arg *bulkf_next(const cdt_msg *msg)
{
	for (size_t i = 0; i < msg->nargs; i++)
		if (msg->args[i].type == MSG_TYPE_BULKF && msg->args[i].v.frame == MSG_BULKF_NONE)
			return &msg->args[i];
	return NULL;
}

size_t msg_bulkf_resolved_size(const cdt_msg *msg)
{
	/* enc_len <= CDT_MSG_MAX, at most 64 values of at most 32728 bytes:
	 * no overflow. */
	size_t n = msg->enc_len;
	for (size_t i = 0; i < msg->nargs; i++)
		if (msg->args[i].type == MSG_TYPE_BULKF)
			n = n - MSG_BULKF_VALUE_SIZE + 4 + msg->args[i].data_len;
	return n;
}

void msg_bulkf_frame(const cdt_msg *msg, size_t k, const uint8_t **ret_p, size_t *ret_len)
{
	const struct msg_arg *a = bulkf_nth(msg, k);
	*ret_p = msg_bulkf_at(msg, a);
	*ret_len = (size_t)a->data_len + MSG_BULKF_OVERHEAD;
}

size_t msg_bulkf_missing(const cdt_msg *msg)
{
	size_t n = 0;
	for (size_t i = 0; i < msg->nargs; i++)
		n += msg->args[i].type == MSG_TYPE_BULKF && msg->args[i].v.frame == MSG_BULKF_NONE;
	return n;
}

size_t msg_bulkf_want(const cdt_msg *msg)
{
	const struct msg_arg *a = bulkf_next(msg);
	return a ? (size_t)a->data_len + MSG_BULKF_OVERHEAD : 0;
}

uint8_t *msg_bulkf_slot(cdt_msg *msg, size_t len)
{
	if (msg_store_reserve(msg, len) < 0)
		return NULL;
	return msg->store + msg->store_len;
}

void msg_bulkf_commit(cdt_msg *msg, size_t len)
{
	struct msg_arg *a = bulkf_next(msg);
	a->v.frame = msg->store_len;
	msg->store_len += len;
}

int msg_bulkf_attach(cdt_msg *msg, const uint8_t *frame, size_t len)
{
	const struct msg_arg *a = bulkf_next(msg);
	if (!a || len != (size_t)a->data_len + MSG_BULKF_OVERHEAD)
		return -EINVAL;
	uint8_t *p = msg_bulkf_slot(msg, len);
	if (!p)
		return -ENOMEM;
	memcpy(p, frame, len);
	msg_bulkf_commit(msg, len);
	return 0;
}

/* Add a bulk argument; takes fd in every case. */
static int bulk_add(cdt_msg *dst, const char *name, uint32_t len, const uint8_t *key_id, int fd)
{
	struct msg_arg *a;
	int r;

	if (dst->nfds >= CDT_FDS_MAX) {
		r = -E2BIG;
		goto out;
	}
	r = msg_add(dst, name, (enum cdt_type)MSG_TYPE_BULK, MSG_BULK_VALUE_SIZE,
		    MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE, &a);
	if (r < 0)
		goto out;
	memcpy(dst->store + a->data_off, key_id, MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE);
	a->data_len = len;
	a->v.fd = fd;
	msg_rebuild_fds(dst);
	return 0;
out:
	close(fd);
	return r;
}

int msg_copy_bulk(cdt_msg *dst, const cdt_msg *src, const char *name)
{
	if (!dst || !src || !name)
		return -EINVAL;
	const struct msg_arg *a = bulk_find(src, name);
	if (a && a->type == MSG_TYPE_BULKF) {
		/* The same BULK frame goes on, byte for byte, never opened. */
		uint8_t *frame;
		if (a->v.frame == MSG_BULKF_NONE)
			return -ENODATA;
		int r = bulkf_add(dst, name, a->data_len, src->store + a->data_off, &frame);
		if (r == 0)
			memcpy(frame, msg_bulkf_at(src, a), a->data_len + MSG_BULKF_OVERHEAD);
		return r;
	}
	if (!a || a->type != MSG_TYPE_BULK)
		return -ENOENT;
	if (a->v.fd < 0)
		return -EBADF;
	int fd = fcntl(a->v.fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return -errno;
	return bulk_add(dst, name, a->data_len, src->store + a->data_off, fd);
}

/* Write all of buf at offset 0 of fd. */
static int bulk_pwrite(int fd, const uint8_t *buf, size_t n)
{
	for (size_t off = 0; off < n;) {
		ssize_t k = pwrite(fd, buf + off, n - off, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		off += (size_t)k;
	}
	return 0;
}

/* Seal len bytes at p into a new memfd under a fresh key, through scratch
 * when there is one. */
static int bulk_seal_one(cdt_msg *dst, const char *name, const uint8_t *p, size_t len,
			 struct buf *scratch)
{
	uint8_t key_id[MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE];
	size_t size = len + BULK_TAG_SIZE; /* len <= CDT_MSG_MAX: no wrap */
	uint8_t *c = NULL;
	int fd = -1, r;

	/* Sizing a memfd past RLIMIT_FSIZE raises SIGXFSZ, which kills by
	 * default: a layer so limited sends this value inline instead. */
	struct rlimit fsize;
	if (getrlimit(RLIMIT_FSIZE, &fsize) == 0 && fsize.rlim_cur != RLIM_INFINITY &&
	    fsize.rlim_cur < size)
		return -EFBIG;
	/* Sealed in ordinary memory and written with one pwrite: cheaper
	 * than sizing and mapping the memfd, whose fresh pages a mapping
	 * would first zero and then fault in. */
	if (scratch) {
		/* What it holds is spent: growing it need not copy that. */
		if (size > scratch->cap)
			buf_free(scratch);
		buf_clear(scratch);
		r = buf_reserve(scratch, size);
		if (r < 0)
			return r == -E2BIG ? -EINVAL : r;
		c = scratch->data;
	} else {
		c = malloc(size);
		if (!c)
			return -ENOMEM;
	}
	fd = memfd_create("conduit-bulk", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	randombytes_buf(key_id, sizeof(key_id));
	bulk_encrypt(key_id, key_id + MSG_BULK_KEY_SIZE, p, len, c);
	r = bulk_pwrite(fd, c, size);
	if (r < 0)
		goto out;
	if (fcntl(fd, F_ADD_SEALS, BULK_SEALS) < 0) {
		r = -errno;
		goto out;
	}
	r = bulk_add(dst, name, (uint32_t)len, key_id, fd);
	fd = -1; /* bulk_add took it */
out:
	sodium_memzero(key_id, sizeof(key_id));
	if (!scratch)
		free(c);
	else if (scratch->cap > MSG_BULK_SCRATCH_KEEP)
		buf_free(scratch);
	if (fd >= 0)
		close(fd);
	return r;
}

/* Seal len bytes at p straight into a BULK frame of dst, under a fresh key. */
static int bulkf_seal_one(cdt_msg *dst, const char *name, const uint8_t *p, size_t len)
{
	uint8_t key_id[MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE];
	uint8_t *frame;
	int r;

	randombytes_buf(key_id, sizeof(key_id));
	r = bulkf_add(dst, name, (uint32_t)len, key_id, &frame);
	if (r == 0)
		bulk_encrypt(key_id, key_id + MSG_BULK_KEY_SIZE, p, len, frame + FRAME_HEADER_SIZE);
	sodium_memzero(key_id, sizeof(key_id));
	return r;
}

static int bulk_copy_arg(cdt_msg *dst, const struct cdt_arg *g)
{
	switch (g->type) {
	case CDT_TYPE_BOOL:
		return cdt_msg_add_bool(dst, g->name, g->v.b);
	case CDT_TYPE_I64:
		return cdt_msg_add_i64(dst, g->name, g->v.i64);
	case CDT_TYPE_U64:
		return cdt_msg_add_u64(dst, g->name, g->v.u64);
	case CDT_TYPE_DOUBLE:
		return cdt_msg_add_double(dst, g->name, g->v.d);
	case CDT_TYPE_STRING:
		return cdt_msg_add_string(dst, g->name, g->v.str.ptr, g->v.str.len);
	case CDT_TYPE_BYTES:
		return cdt_msg_add_bytes(dst, g->name, g->v.bytes.ptr, g->v.bytes.len);
	case CDT_TYPE_FD:
		return cdt_msg_add_fd(dst, g->name, g->v.fd);
	}
	return -EINVAL;
}

int msg_bulk_seal(const cdt_msg *msg, cdt_msg **ret_out)
{
	return msg_bulk_seal_scratch(msg, NULL, ret_out);
}

int msg_bulk_seal_scratch(const cdt_msg *msg, struct buf *scratch, cdt_msg **ret_out)
{
	cdt_msg *out = NULL;
	size_t budget, n = 0;
	int r;

	if (!msg || !ret_out)
		return -EINVAL;
	/* Sealing bulk may not cost an fd argument its slot; values that
	 * fit a BULK frame need none. */
	budget = CDT_FDS_MAX - msg->nfds;
	for (size_t i = 0; i < msg->nargs; i++) {
		const struct msg_arg *a = &msg->args[i];
		if (a->type == CDT_TYPE_BYTES && a->data_len >= CDT_BULK_MIN &&
		    (a->data_len <= MSG_BULKF_MAX || budget > 0))
			n++;
	}
	if (n == 0 || msg->fd_taken) {
		*ret_out = NULL;
		return 0;
	}
	r = cdt_msg_new(msg->kind, msg->call_id, msg->name, &out);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < msg->nargs && r >= 0; i++) {
		const struct msg_arg *a = &msg->args[i];
		struct cdt_arg g;
		if (cdt_msg_arg(msg, i, &g) < 0) {
			r = -EINVAL;
			break;
		}
		if (a->type == CDT_TYPE_BYTES && a->data_len >= CDT_BULK_MIN &&
		    a->data_len <= MSG_BULKF_MAX) {
			r = bulkf_seal_one(out, g.name, g.v.bytes.ptr, g.v.bytes.len);
		} else if (a->type == CDT_TYPE_BYTES && a->data_len >= CDT_BULK_MIN && budget > 0) {
			r = bulk_seal_one(out, g.name, g.v.bytes.ptr, g.v.bytes.len, scratch);
			budget--;
		} else {
			r = bulk_copy_arg(out, &g);
		}
	}
	if (r == -ENOSYS || r == -EPERM || r == -EACCES || r == -EFBIG) {
		/* No memfds here (old kernel, a stricter sandbox, a file size
		 * limit): the value goes inline as before, sealed by the
		 * channel. */
		cdt_msg_free(out);
		*ret_out = NULL;
		return 0;
	}
out:
	if (r < 0) {
		cdt_msg_free(out);
		return r;
	}
	*ret_out = out;
	return 0;
}

int msg_bulk_check_fd(int fd, uint64_t len)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);

	/* A file that cannot be sealed (not a memfd) fails here with EINVAL;
	 * a missing seal would let the sender change the value under us. */
	if (seals < 0 || seals != BULK_SEALS)
		return -CDT_E_FD;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return -CDT_E_FD;
	if (st.st_size < 0 || (uint64_t)st.st_size != len + BULK_TAG_SIZE)
		return -CDT_E_FD;
	return 0;
}

int msg_bulk_check(const cdt_msg *msg)
{
	for (size_t i = 0; i < msg->nargs; i++) {
		const struct msg_arg *a = &msg->args[i];
		if (a->type == MSG_TYPE_BULKF && a->v.frame == MSG_BULKF_NONE)
			return -CDT_E_PROTO;
		if (a->type != MSG_TYPE_BULK)
			continue;
		int r = msg_bulk_check_fd(a->v.fd, a->data_len);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Open bulk argument a into the store (room already reserved, tag
 * included). */
static int bulk_resolve_one(cdt_msg *msg, struct msg_arg *a)
{
	uint8_t key_id[MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE];
	size_t len = a->data_len, size = len + BULK_TAG_SIZE;
	uint8_t *dst = msg->store + msg->store_len;
	int r;

	/* Never rely on the broker's check alone: it may be compromised. */
	r = msg_bulk_check_fd(a->v.fd, len);
	if (r < 0)
		return r;
	/* Sealed: the size cannot change under us, so a short read is a
	 * broken file, not a race. */
	for (size_t off = 0; off < size;) {
		ssize_t k = pread(a->v.fd, dst + off, size - off, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -CDT_E_FD;
		off += (size_t)k;
	}
	memcpy(key_id, msg->store + a->data_off, sizeof(key_id));
	/* Opened in place, as the channel opens its frames. */
	r = bulk_decrypt(key_id, key_id + MSG_BULK_KEY_SIZE, dst, len, dst);
	sodium_memzero(key_id, sizeof(key_id));
	if (r < 0)
		return r;
	sodium_memzero(msg->store + a->data_off, MSG_BULK_KEY_SIZE);
	close(a->v.fd);
	a->v.fd = -1;
	a->type = CDT_TYPE_BYTES;
	a->data_off = (uint32_t)msg->store_len;
	msg->store_len += len;
	/* A bulk value of len encodes as 4 + len bytes inline. */
	msg->enc_len = msg->enc_len - MSG_BULK_VALUE_SIZE + 4 + len;
	msg_rebuild_fds(msg);
	return 0;
}

/* Open BULKF argument a in place, inside its frame in the store (a
 * borrowed frame is opened into the store: the other message's stays as
 * it is). */
static int bulkf_resolve_one(cdt_msg *msg, struct msg_arg *a)
{
	uint8_t key_id[MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE];
	int r;

	if (a->v.frame == MSG_BULKF_NONE)
		return -CDT_E_PROTO;
	if (a->v.frame & MSG_BULKF_BORROWED) {
		r = msg_store_reserve(msg, (size_t)a->data_len + BULK_TAG_SIZE);
		if (r < 0)
			return r;
	}
	const uint8_t *c = msg_bulkf_at(msg, a) + FRAME_HEADER_SIZE;
	uint8_t *m = (a->v.frame & MSG_BULKF_BORROWED) ? msg->store + msg->store_len : (uint8_t *)c;
	memcpy(key_id, msg->store + a->data_off, sizeof(key_id));
	r = bulk_decrypt(key_id, key_id + MSG_BULK_KEY_SIZE, c, a->data_len, m);
	sodium_memzero(key_id, sizeof(key_id));
	if (r < 0)
		return r;
	if (a->v.frame & MSG_BULKF_BORROWED)
		msg->store_len += a->data_len;
	sodium_memzero(msg->store + a->data_off, MSG_BULK_KEY_SIZE);
	a->type = CDT_TYPE_BYTES;
	a->data_off = (uint32_t)(m - msg->store);
	msg->enc_len = msg->enc_len - MSG_BULKF_VALUE_SIZE + 4 + a->data_len;
	msg->nbulkf--;
	return 0;
}

int msg_bulk_resolve(cdt_msg *msg)
{
	size_t total = 0;
	int r;

	if (!msg)
		return -EINVAL;
	/* BULK frames are in the store already. */
	for (size_t i = 0; i < msg->nargs && msg->nbulkf; i++) {
		if (msg->args[i].type != MSG_TYPE_BULKF)
			continue;
		r = bulkf_resolve_one(msg, &msg->args[i]);
		if (r < 0)
			return r;
	}
	/* Each value's tag is read into the store too, past its end. */
	for (size_t i = 0; i < msg->nargs; i++)
		if (msg->args[i].type == MSG_TYPE_BULK)
			total += msg->args[i].data_len +
				 BULK_TAG_SIZE; /* <= 4 x (CDT_MSG_MAX + 16) */
	if (total == 0)
		return 0;
	/* One reservation for all: the store moves at most once. */
	r = msg_store_reserve(msg, total);
	if (r < 0)
		return r;
	for (size_t i = 0; i < msg->nargs; i++) {
		if (msg->args[i].type != MSG_TYPE_BULK)
			continue;
		r = bulk_resolve_one(msg, &msg->args[i]);
		if (r < 0)
			return r;
	}
	return 0;
}
