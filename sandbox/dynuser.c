/* SPDX-License-Identifier: MIT */
/*
 * Dynamic users: each running layer gets a uid (gid == uid) from
 * [SANDBOX_DYNAMIC_UID_MIN, SANDBOX_DYNAMIC_UID_MAX] that no other layer
 * holds and that has no passwd or group entry.
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

/* A uid with an account is someone's: never hand it to a layer. */
static bool dynuser_unlisted(uid_t uid)
{
	return getpwuid(uid) == NULL && getgrgid((gid_t)uid) == NULL;
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
