/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "selfcheck.h"

static int proc_path(pid_t pid, const char *leaf, char *buf, size_t size)
{
	int n;

	if (pid < 0)
		return -EINVAL;
	if (pid == 0)
		n = snprintf(buf, size, "/proc/self/%s", leaf);
	else
		n = snprintf(buf, size, "/proc/%d/%s", (int)pid, leaf);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
}

int selfcheck_fd_count(pid_t pid, size_t *ret_count)
{
	char path[64];
	struct dirent *de;
	size_t n = 0;
	DIR *d;
	int r, self_fd;

	r = proc_path(pid, "fd", path, sizeof(path));
	if (r < 0)
		return r;
	d = opendir(path);
	if (!d)
		return -errno;
	/* The directory stream is itself an fd of this process. */
	self_fd = pid == 0 || pid == getpid() ? dirfd(d) : -1;
	errno = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (self_fd >= 0 && atoi(de->d_name) == self_fd)
			continue;
		n++;
	}
	r = errno ? -errno : 0;
	closedir(d);
	if (r < 0)
		return r;
	*ret_count = n;
	return 0;
}

int selfcheck_fd_open(pid_t pid, int fd)
{
	char leaf[32], path[64];
	struct stat st;
	int r;

	if (fd < 0)
		return -EINVAL;
	snprintf(leaf, sizeof(leaf), "fd/%d", fd);
	r = proc_path(pid, leaf, path, sizeof(path));
	if (r < 0)
		return r;
	if (lstat(path, &st) == 0)
		return 1;
	return errno == ENOENT ? 0 : -errno;
}

int selfcheck_read(pid_t pid, struct selfcheck *ret_check)
{
	struct selfcheck c = {0};
	char path[64], line[256];
	int have = 0, r;
	FILE *f;

	r = selfcheck_fd_count(pid, &c.fds);
	if (r < 0)
		return r;
	r = proc_path(pid, "status", path, sizeof(path));
	if (r < 0)
		return r;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %" SCNu64 " kB", &c.rss_kb) == 1)
			have |= 1;
		else if (sscanf(line, "VmHWM: %" SCNu64 " kB", &c.hwm_kb) == 1)
			have |= 2;
	}
	fclose(f);
	if (have != 3)
		return -EIO;
	*ret_check = c;
	return 0;
}
