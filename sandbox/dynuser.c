/* SPDX-License-Identifier: MIT */
/*
 * Dynamic users: each running layer gets a uid (gid == uid) from
 * [SANDBOX_DYNAMIC_UID_MIN, SANDBOX_DYNAMIC_UID_MAX] that no other layer
 * holds, that has no passwd or group entry and that no subordinate id range
 * in /etc/subuid or /etc/subgid covers (those belong to user namespaces of
 * rootless containers).
 *
 * Ownership is an exclusive flock on <lock_dir>/<uid>, held by the parent
 * (broker or conduit-sandbox) for the layer's lifetime: flock is per open
 * file description, so two plans in one process, or two brokers, never get
 * the same uid, and a crashed holder frees its uids with its fds.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
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

/* A uid with an account, or one lent to a user namespace, is someone's:
 * never hand it to a layer.  An unreadable subid file fails closed. */
static bool dynuser_unlisted(uid_t uid)
{
	if (getpwuid(uid) != NULL || getgrgid((gid_t)uid) != NULL)
		return false;
	return dynuser_subid_covers("/etc/subuid", uid) == 0 &&
	       dynuser_subid_covers("/etc/subgid", uid) == 0;
}

int dynuser_acquire(const char *lock_dir, uid_t *ret_uid, int *ret_lock_fd)
{
	const uint32_t span = SANDBOX_DYNAMIC_UID_MAX - SANDBOX_DYNAMIC_UID_MIN + 1;
	uint32_t start = 0;
	char path[4096];
	int r;

	if (!lock_dir)
		lock_dir = SANDBOX_DYNAMIC_LOCK_DIR;
	r = dynuser_lock_dir(lock_dir);
	if (r < 0)
		return r;
	/* A random start spreads layers over the range, so a uid freed a moment
	 * ago (whose files may linger in /tmp) is unlikely to be reused at once. */
	if (getrandom(&start, sizeof(start), 0) != sizeof(start))
		return -errno;
	for (uint32_t i = 0; i < span; i++) {
		uid_t uid = SANDBOX_DYNAMIC_UID_MIN + (start + i) % span;
		int n = snprintf(path, sizeof(path), "%s/%u", lock_dir, (unsigned)uid);
		if (n < 0 || (size_t)n >= sizeof(path))
			return -ENAMETOOLONG;
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return -errno;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int e = errno;
			close(fd);
			if (e == EWOULDBLOCK)
				continue;
			return -e;
		}
		if (!dynuser_unlisted(uid)) {
			close(fd);
			continue;
		}
		*ret_uid = uid;
		*ret_lock_fd = fd;
		return 0;
	}
	return -EUSERS;
}
