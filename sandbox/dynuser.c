/* SPDX-License-Identifier: MIT */
/*
 * Dynamic users: each running layer gets a uid (gid == uid) from
 * [SANDBOX_DYNAMIC_UID_MIN, SANDBOX_DYNAMIC_UID_MAX] that no other layer
 * holds, that has no passwd or group entry in any source nsswitch.conf
 * names (asked in a child: idquery.c) and that no subordinate id range in
 * /etc/subuid or /etc/subgid covers (those belong to user namespaces of
 * rootless containers).  Any failure to find out fails closed.
 *
 * Ownership is an exclusive flock on <lock_dir>/<uid>, held by the parent
 * (broker or conduit-sandbox) for the layer's lifetime: flock is per open
 * file description, so two plans in one process, or two brokers, never get
 * the same uid, and a crashed holder frees its uids with its fds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox-internal.h"

static int dynuser_lock_dir(const char *dir)
{
	struct stat st;

	/* Parents of the default directory: /run/conduit. */
	if (mkdir("/run/conduit", 0755) < 0 && errno != EEXIST)
		return -errno;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	/* Someone else's directory could hand out our uids: refuse it. */
	if (lstat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0022))
		return -EPERM;
	return 0;
}

/* Parse an unsigned decimal id of at most 10 digits ending at @end. */
static bool subid_number(const char *s, const char *end, uint64_t *ret)
{
	uint64_t v = 0;

	if (s == end || end - s > 10)
		return false;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*ret = v;
	return true;
}

int dynuser_subid_covers(const char *path, uint32_t id)
{
	char *line = NULL;
	size_t cap = 0;
	FILE *f;
	int r = 0;

	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	/* "name:start:count" per line.  A line that does not parse is skipped:
	 * the file is the administrator's, and shadow's tools ignore such
	 * lines too; a valid range anywhere still counts. */
	while (getline(&line, &cap, f) >= 0) {
		char *c1 = strchr(line, ':'), *c2, *end;
		uint64_t start, count;

		if (!c1 || !(c2 = strchr(c1 + 1, ':')))
			continue;
		end = c2 + 1 + strcspn(c2 + 1, "\n");
		if (!subid_number(c1 + 1, c2, &start) || !subid_number(c2 + 1, end, &count))
			continue;
		if (count > 0 && id >= start && id - start < count) {
			r = 1;
			break;
		}
	}
	if (r == 0 && ferror(f))
		r = -EIO;
	free(line);
	fclose(f);
	return r;
}

/* A uid lent to a user namespace is someone's: never hand it to a layer.
 * 1 when a subordinate-id range covers it, 0 when none does, -errno when a
 * file cannot be read (the caller fails closed). */
static int dynuser_subid_taken(uid_t uid)
{
	int r = dynuser_subid_covers("/etc/subuid", uid);

	if (r == 0)
		r = dynuser_subid_covers("/etc/subgid", uid);
	return r;
}

/* Lock <lock_dir>/<uid>: the fd, -EWOULDBLOCK when another holder has it. */
static int dynuser_lock(const char *lock_dir, uid_t uid)
{
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/%u", lock_dir, (unsigned)uid), fd;

	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static void dynuser_close(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int dynuser_acquire(const char *lock_dir, size_t n, uid_t *ret_uids, int *ret_lock_fds)
{
	const uint32_t span = SANDBOX_DYNAMIC_UID_MAX - SANDBOX_DYNAMIC_UID_MIN + 1;
	int fds[IDQUERY_IDS_MAX], cand_fds[IDQUERY_IDS_MAX];
	uid_t uids[IDQUERY_IDS_MAX];
	struct idquery_req req = {.kind = IDQUERY_IDS};
	struct idquery_result res;
	uint32_t start = 0, i = 0;
	size_t got = 0, k = 0;
	int r;

	if (n == 0 || n > IDQUERY_IDS_MAX || !ret_uids || !ret_lock_fds)
		return -EINVAL;
	if (!lock_dir)
		lock_dir = SANDBOX_DYNAMIC_LOCK_DIR;
	r = dynuser_lock_dir(lock_dir);
	if (r < 0)
		return r;
	/* A random start spreads layers over the range, so a uid freed a moment
	 * ago (whose files may linger in /tmp) is unlikely to be reused at once. */
	if (getrandom(&start, sizeof(start), 0) != sizeof(start))
		return -errno;
	while (got < n) {
		/* Lock as many candidates as are still needed (after a round that
		 * found some taken, a full batch), then ask the account database
		 * about all of them at once.  Locked first, so that no other
		 * holder can take a uid between check and use. */
		size_t want = i == 0 ? n - got : IDQUERY_IDS_MAX;
		for (k = 0; i < span && k < want; i++) {
			uid_t uid = SANDBOX_DYNAMIC_UID_MIN + (start + i) % span;
			int fd = dynuser_lock(lock_dir, uid);
			if (fd == -EWOULDBLOCK)
				continue;
			if (fd < 0) {
				r = fd;
				goto out;
			}
			cand_fds[k] = fd;
			req.ids[k++] = uid;
			r = dynuser_subid_taken(uid);
			if (r < 0)
				goto out;
			if (r > 0)
				close(cand_fds[--k]);
		}
		if (k == 0) {
			r = -EUSERS;
			goto out;
		}
		req.n = k;
		r = idquery_run(&req, &res);
		if (r < 0)
			goto out;
		for (size_t j = 0; j < k; j++) {
			if (res.taken[j] || got == n) {
				close(cand_fds[j]);
				continue;
			}
			uids[got] = req.ids[j];
			fds[got++] = cand_fds[j];
		}
		k = 0;
	}
	memcpy(ret_uids, uids, n * sizeof(*uids));
	memcpy(ret_lock_fds, fds, n * sizeof(*fds));
	return 0;
out:
	dynuser_close(cand_fds, k);
	dynuser_close(fds, got);
	return r;
}

int sandbox_dynuser_reserve(const char *lock_dir, size_t n, struct sandbox_dynuser *ret)
{
	uid_t uids[SANDBOX_DYNUSER_BATCH_MAX];
	int fds[SANDBOX_DYNUSER_BATCH_MAX];
	int r;

	if (!ret || n == 0 || n > SANDBOX_DYNUSER_BATCH_MAX)
		return -EINVAL;
	if (geteuid() != 0)
		return -EPERM;
	r = dynuser_acquire(lock_dir, n, uids, fds);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		ret[i].uid = uids[i];
		ret[i].lock_fd = fds[i];
	}
	return 0;
}

void sandbox_dynuser_release(struct sandbox_dynuser *d, size_t n)
{
	if (!d)
		return;
	for (size_t i = 0; i < n; i++) {
		if (d[i].lock_fd >= 0)
			close(d[i].lock_fd);
		d[i].lock_fd = -1;
	}
}
