/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "resource.h"

int res_open_flags(unsigned mode, int *ret_flags)
{
	/* O_NOFOLLOW and O_NOCTTY hold even if the resolve flags were lost;
	 * never O_TRUNC: the broker opens what the policy names and does not
	 * destroy it.  O_CREAT only when the policy says `create`, and only
	 * for a writing mode (a created empty file is nothing to read). */
	const int always = O_CLOEXEC | O_NOCTTY | O_NOFOLLOW;
	int flags;

	switch (mode & ~(unsigned)RES_MODE_CREATE) {
	case RES_MODE_READ:
		flags = O_RDONLY;
		break;
	case RES_MODE_WRITE:
		flags = O_WRONLY;
		break;
	case RES_MODE_APPEND:
		flags = O_WRONLY | O_APPEND;
		break;
	case RES_MODE_READ_WRITE:
		flags = O_RDWR;
		break;
	default:
		return -EINVAL;
	}
	if (mode & RES_MODE_CREATE) {
		if ((mode & ~(unsigned)RES_MODE_CREATE) == RES_MODE_READ)
			return -EINVAL;
		flags |= O_CREAT;
	}
	*ret_flags = flags | always;
	return 0;
}

int res_root_open(const char *dir, int *ret_dirfd)
{
	int fd;

	if (!dir || !*dir)
		return -EINVAL;
	/* O_PATH: the root is only ever a starting point for openat2, never
	 * read, so it grants nothing if it leaked. */
	fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*ret_dirfd = fd;
	return 0;
}

/* Relative and canonical, so what the policy compared is what gets walked. */
int res_path_check(const char *path)
{
	size_t len, comp = 0;

	if (!path)
		return -EINVAL;
	len = strnlen(path, RES_PATH_MAX + 1);
	if (len == 0)
		return -EINVAL;
	if (len > RES_PATH_MAX)
		return -ENAMETOOLONG;
	if (path[0] == '/' || path[len - 1] == '/')
		return -EINVAL;
	for (size_t i = 0; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0') {
			comp++;
			continue;
		}
		if (comp == 0)
			return -EINVAL; /* "//" */
		if ((comp == 1 && path[i - 1] == '.') ||
		    (comp == 2 && path[i - 1] == '.' && path[i - 2] == '.'))
			return -EINVAL;
		comp = 0;
	}
	return 0;
}

int res_open(int root_fd, const char *path, unsigned mode, int *ret_fd)
{
	struct open_how how = {0};
	struct stat st;
	int flags, fd = -1, r;

	r = res_open_flags(mode, &flags);
	if (r < 0)
		return r;
	r = res_path_check(path);
	if (r < 0)
		return r;
	if (root_fd < 0)
		return -EBADF;
	/* Why this open is safe: the kernel resolves path from the policy's
	 * root and fails the whole walk (not just the last component) on
	 * any symlink, on a /proc magic link, and on any step that would
	 * leave the root, so a link swapped in after every check we could
	 * make still cannot redirect it.  O_NONBLOCK keeps a FIFO or a
	 * modem line from stalling the broker; it is cleared below. */
	how.flags = (uint64_t)(flags | O_NONBLOCK);
	/* A created file is the broker's (root's), readable and writable by
	 * no one else: the layer reaches it only through the passed fd. */
	if (flags & O_CREAT)
		how.mode = 0600;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	/* Only files and devices: a directory fd would let the layer openat()
	 * anything beneath it, a FIFO or socket is not what a policy means. */
	if (S_ISDIR(st.st_mode)) {
		r = -EISDIR;
		goto out;
	}
	if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
		r = -EPERM;
		goto out;
	}
	/* F_SETFL sets only the status bits: this clears O_NONBLOCK and keeps
	 * O_APPEND, so the fd's flags are exactly the mode's. */
	if (fcntl(fd, F_SETFL, flags & O_APPEND) < 0) {
		r = -errno;
		goto out;
	}
	*ret_fd = fd;
	fd = -1;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	return r;
}

/* ---- sockets ---- */

union res_addr {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
	struct sockaddr_un un;
};

static int port_parse(const char *s, bool allow_zero, uint16_t *ret_port)
{
	uint32_t v = 0;
	size_t n = 0;

	for (; s[n]; n++) {
		if (s[n] < '0' || s[n] > '9' || n >= 5)
			return -EINVAL;
		v = v * 10 + (uint32_t)(s[n] - '0');
	}
	/* One spelling per port: no empty, no leading zero, no sign. */
	if (n == 0 || (n > 1 && s[0] == '0') || v > 65535 || (v == 0 && !allow_zero))
		return -EINVAL;
	*ret_port = (uint16_t)v;
	return 0;
}

static int hostport_parse(const char *hp, bool allow_zero, union res_addr *ret_addr,
			  socklen_t *ret_len)
{
	char host[INET6_ADDRSTRLEN];
	const char *port, *end;
	union res_addr a = {0};
	uint16_t p;
	bool v6 = false;
	size_t hlen;
	int r;

	if (!hp)
		return -EINVAL;
	if (hp[0] == '[') {
		v6 = true;
		end = strchr(hp, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		hp++;
		port = end + 2;
	} else {
		end = strrchr(hp, ':');
		if (!end)
			return -EINVAL;
		port = end + 1;
	}
	hlen = (size_t)(end - hp);
	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, hp, hlen);
	host[hlen] = '\0';
	r = port_parse(port, allow_zero, &p);
	if (r < 0)
		return r;
	if (v6) {
		if (inet_pton(AF_INET6, host, &a.in6.sin6_addr) != 1)
			return -EINVAL;
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons(p);
		*ret_len = sizeof(a.in6);
	} else {
		if (inet_pton(AF_INET, host, &a.in4.sin_addr) != 1)
			return -EINVAL;
		a.in4.sin_family = AF_INET;
		a.in4.sin_port = htons(p);
		*ret_len = sizeof(a.in4);
	}
	*ret_addr = a;
	return 0;
}

static int unix_parse(const char *path, union res_addr *ret_addr, socklen_t *ret_len)
{
	union res_addr a = {0};
	size_t len;

	/* Absolute only (the broker's cwd is no policy), never abstract. */
	if (!path || path[0] != '/')
		return -EINVAL;
	len = strnlen(path, sizeof(a.un.sun_path));
	if (len >= sizeof(a.un.sun_path))
		return -ENAMETOOLONG;
	a.un.sun_family = AF_UNIX;
	memcpy(a.un.sun_path, path, len + 1);
	*ret_addr = a;
	*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	return 0;
}

int res_tcp_check(const char *hostport, bool listen)
{
	union res_addr a;
	socklen_t len;

	return hostport_parse(hostport, listen, &a, &len);
}

int res_unix_check(const char *path)
{
	union res_addr a;
	socklen_t len;

	return unix_parse(path, &a, &len);
}

static int sock_connect(const union res_addr *a, socklen_t len, int *ret_fd)
{
	int fd, r;

	fd = socket(a->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Why this connect is safe: the address is the policy's, parsed
	 * numerically; the broker sends nothing on the socket and hands it
	 * over, so it gains the layer only the reach the policy wrote down. */
	if (connect(fd, &a->sa, len) == 0) {
		*ret_fd = fd;
		return 0;
	}
	if (errno == EINPROGRESS) {
		*ret_fd = fd;
		return 1;
	}
	r = -errno;
	close(fd);
	return r;
}

int res_connect_tcp(const char *hostport, int *ret_fd)
{
	union res_addr a;
	socklen_t len;
	int r = hostport_parse(hostport, false, &a, &len);

	if (r < 0)
		return r;
	return sock_connect(&a, len, ret_fd);
}

int res_connect_unix(const char *path, int *ret_fd)
{
	union res_addr a;
	socklen_t len;
	int r = unix_parse(path, &a, &len);

	if (r < 0)
		return r;
	return sock_connect(&a, len, ret_fd);
}

int res_connect_finish(int fd)
{
	union res_addr peer;
	socklen_t len = sizeof(peer);
	int err = 0;
	socklen_t elen = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		return -errno;
	if (err)
		return -err;
	if (getpeername(fd, &peer.sa, &len) < 0)
		return errno == ENOTCONN ? -EINPROGRESS : -errno;
	return 0;
}

static int sock_listen(const union res_addr *a, socklen_t len, int backlog, int *ret_fd)
{
	const int one = 1;
	int fd, r;

	if (backlog < 1 || backlog > RES_BACKLOG_MAX)
		return -EINVAL;
	fd = socket(a->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* SO_REUSEADDR lets a restarted broker rebind while old connections
	 * sit in TIME_WAIT; it does not allow two live listeners. */
	if (a->sa.sa_family != AF_UNIX &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
		r = -errno;
		goto out;
	}
	/* "[::]" means IPv6 only: a policy that wants IPv4 says so. */
	if (a->sa.sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) {
		r = -errno;
		goto out;
	}
	/* Why this bind is safe: the address or path is the policy's; a unix
	 * path that exists is refused (EADDRINUSE), never unlinked, so the
	 * broker cannot be made to delete a file. */
	if (bind(fd, &a->sa, len) < 0 || listen(fd, backlog) < 0) {
		r = -errno;
		goto out;
	}
	*ret_fd = fd;
	fd = -1;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	return r;
}

int res_listen_tcp(const char *hostport, int backlog, int *ret_fd)
{
	union res_addr a;
	socklen_t len;
	int r = hostport_parse(hostport, true, &a, &len);

	if (r < 0)
		return r;
	return sock_listen(&a, len, backlog, ret_fd);
}

int res_listen_unix(const char *path, int backlog, int *ret_fd)
{
	union res_addr a;
	socklen_t len;
	int r = unix_parse(path, &a, &len);

	if (r < 0)
		return r;
	return sock_listen(&a, len, backlog, ret_fd);
}
