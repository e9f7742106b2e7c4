/* SPDX-License-Identifier: MIT */
/*
 * resource: the privileged services that hand a layer an fd.
 *
 * Every argument here comes from the compiled policy, never from a layer's
 * message: the layer only names a resource its policy lists, and the broker
 * looks the rest up.  Still, each function checks its input as if it were
 * hostile, because a policy mistake must not turn into an escape.
 *
 * All returned fds are O_CLOEXEC; sockets are also O_NONBLOCK (the layer
 * may change that on its own copy's shared file status).
 */
#ifndef CONDUIT_BROKER_RESOURCE_H
#define CONDUIT_BROKER_RESOURCE_H

#include <stdbool.h>
#include <stdint.h>

/* Access a policy grants on a file.  The open flags are derived from this
 * alone (res_open_flags()); no caller-supplied flag bits exist. */
enum res_mode {
	RES_MODE_READ = 1,
	RES_MODE_WRITE = 2,	 /* O_WRONLY, no create, no truncate */
	RES_MODE_APPEND = 3,	 /* O_WRONLY | O_APPEND */
	RES_MODE_READ_WRITE = 4, /* O_RDWR */
};
/* OR'd into a writing mode: create the file (0600, owned by the broker's
 * user) when it does not exist.  Never truncates, never on a read-only open. */
#define RES_MODE_CREATE 0x100

#define RES_PATH_MAX	4095 /* bytes of a relative path, without the NUL */
#define RES_BACKLOG_MAX 4096

/* Open flags for a mode: the access bits plus O_CLOEXEC | O_NOCTTY |
 * O_NOFOLLOW.  Errors: -EINVAL for any value outside enum res_mode. */
int res_open_flags(unsigned mode, int *ret_flags);

/* Open the directory a policy's open rules are relative to (O_PATH |
 * O_DIRECTORY | O_CLOEXEC), once, at policy load.  Errors: -errno. */
int res_root_open(const char *dir, int *ret_dirfd);

/* Whether res_open() accepts path's spelling (relative, canonical, at most
 * RES_PATH_MAX bytes), so the policy compiler can reject a bad path at load
 * time.  Returns 0, -EINVAL or -ENAMETOOLONG. */
int res_path_check(const char *path);

/* Open path beneath root_fd with the flags of mode.  path must be relative
 * and canonical: no empty component, no ".", "..", leading, trailing or
 * doubled '/'; the kernel then enforces RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
 * | RESOLVE_NO_MAGICLINKS on the walk itself.  Errors: -EINVAL (not a
 * canonical relative path, bad mode), -ENAMETOOLONG, -ELOOP (a symlink on
 * the way), -EXDEV (escape attempt), -errno from openat2. */
int res_open(int root_fd, const char *path, unsigned mode, int *ret_fd);

/* TCP endpoints are numeric "a.b.c.d:port" or "[v6]:port", port 1..65535
 * (0, an ephemeral port, for listen only).  Names are never resolved: a DNS
 * answer is not policy. */

/* Whether hostport is a valid numeric endpoint for connect (listen false)
 * or listen (listen true: port 0 allowed).  Returns 0 or -EINVAL. */
int res_tcp_check(const char *hostport, bool listen);
/* Whether path can name a unix socket: absolute, fits sun_path with its
 * NUL.  Returns 0, -EINVAL or -ENAMETOOLONG. */
int res_unix_check(const char *path);

/* Start a TCP connection.  Returns 0 when connected, 1 when in progress
 * (wait for EPOLLOUT, then res_connect_finish()), *ret_fd written in both
 * cases.  Errors: -EINVAL (not numeric host:port), -errno. */
int res_connect_tcp(const char *hostport, int *ret_fd);
/* Connect to a unix stream socket at an absolute path.  Returns 0 or 1 as
 * above.  Errors: -EINVAL (relative path), -ENAMETOOLONG, -errno. */
int res_connect_unix(const char *path, int *ret_fd);
/* Outcome of an in-progress connect: 0, -EINPROGRESS (still going), or the
 * connection's -errno. */
int res_connect_finish(int fd);

/* Listening sockets with SO_REUSEADDR (tcp), backlog 1..RES_BACKLOG_MAX.
 * A unix path that exists already fails with -EADDRINUSE: the broker keeps
 * listening sockets for the policy's lifetime instead of re-creating them. */
int res_listen_tcp(const char *hostport, int backlog, int *ret_fd);
int res_listen_unix(const char *path, int backlog, int *ret_fd);

#endif
