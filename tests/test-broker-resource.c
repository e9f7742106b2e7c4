/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "resource.h"
#include "selfcheck.h"

/* F_GETFL reports the kernel's O_LARGEFILE, which glibc defines as 0 on
 * 64-bit targets. */
#define KERNEL_O_LARGEFILE 0100000

#define SWAP_ITERATIONS 10000

/* valgrind 3.19 (Debian 12) does not implement openat2 and returns ENOSYS;
 * res_open() then fails closed, and these cases say they did not run rather
 * than pass.  They run natively and under ASan+UBSan. */
static void require_openat2(void)
{
	struct open_how how = {.flags = O_RDONLY | O_CLOEXEC};
	long fd = syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how));

	if (fd < 0 && errno == ENOSYS) {
		print_message("openat2: ENOSYS (valgrind?): case not run\n");
		skip();
	}
	assert_true(fd >= 0);
	close((int)fd);
}

struct fixture {
	char dir[64];
	char root[96], outside[96];
	int root_fd;
	struct stat good; /* the one inode the swap test may ever open */
	size_t fds_before;
};

static void put(const char *dir, const char *name, const char *content)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "we");
	assert_non_null(f);
	assert_int_equal(fputs(content, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void at(const struct fixture *fx, const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", fx->root, name);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char p[256], q[256];

	assert_non_null(fx);
	assert_int_equal(selfcheck_fd_count(0, &fx->fds_before), 0);
	strcpy(fx->dir, "/tmp/conduit-res.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->root, sizeof(fx->root), "%s/root", fx->dir);
	snprintf(fx->outside, sizeof(fx->outside), "%s/outside", fx->dir);
	assert_int_equal(mkdir(fx->root, 0755), 0);
	assert_int_equal(mkdir(fx->outside, 0755), 0);
	put(fx->root, "file.txt", "inside");
	put(fx->outside, "secret", "secret");
	put(fx->outside, "f", "secret");
	at(fx, "sub", p, sizeof(p));
	assert_int_equal(mkdir(p, 0755), 0);
	put(p, "inner.txt", "inner");
	at(fx, "link", p, sizeof(p));
	assert_int_equal(symlink("file.txt", p), 0);
	at(fx, "dangling", p, sizeof(p));
	assert_int_equal(symlink("nowhere", p), 0);
	at(fx, "escape", p, sizeof(p));
	assert_int_equal(symlink("../outside/secret", p), 0);
	at(fx, "abs", p, sizeof(p));
	assert_int_equal(symlink("/etc/passwd", p), 0);
	at(fx, "dirlink", p, sizeof(p));
	assert_int_equal(symlink("sub", p), 0);
	at(fx, "fifo", p, sizeof(p));
	assert_int_equal(mkfifo(p, 0600), 0);
	/* For the swap test: target <-> target_alt, d <-> d_alt. */
	at(fx, "file.txt", p, sizeof(p));
	at(fx, "target", q, sizeof(q));
	assert_int_equal(link(p, q), 0);
	assert_int_equal(stat(p, &fx->good), 0);
	at(fx, "target_alt", q, sizeof(q));
	assert_int_equal(symlink("../outside/secret", q), 0);
	at(fx, "d", q, sizeof(q));
	assert_int_equal(mkdir(q, 0755), 0);
	at(fx, "d/f", q, sizeof(q));
	assert_int_equal(link(p, q), 0);
	at(fx, "d_alt", q, sizeof(q));
	assert_int_equal(symlink("../outside", q), 0);
	assert_int_equal(res_root_open(fx->root, &fx->root_fd), 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[128];
	size_t fds;

	close(fx->root_fd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	assert_int_equal(system(cmd), 0);
	/* Every test gives back every fd it got. */
	assert_int_equal(selfcheck_fd_count(0, &fds), 0);
	assert_int_equal(fds, fx->fds_before);
	free(fx);
	return 0;
}

static void expect_open(const struct fixture *fx, const char *path, unsigned mode, int err)
{
	int fd = -77;
	int r = res_open(fx->root_fd, path, mode, &fd);

	if (r != err)
		print_error("path \"%.60s\" mode %d: got %d, want %d\n", path, (int)mode, r, err);
	assert_int_equal(r, err);
	if (err < 0) {
		assert_int_equal(fd, -77); /* not written on failure */
		return;
	}
	close(fd);
}

static void test_bad_paths(void **state)
{
	static const struct {
		const char *path;
		int err;
	} cases[] = {
		{"", -EINVAL},
		{"/etc/passwd", -EINVAL},
		{"/proc/self/root/etc/passwd", -EINVAL},
		{"/proc/self/fd/0", -EINVAL},
		{"..", -EINVAL},
		{"../outside/secret", -EINVAL},
		{"sub/../file.txt", -EINVAL},
		{"sub/..", -EINVAL},
		{".", -EINVAL},
		{"./file.txt", -EINVAL},
		{"sub/./inner.txt", -EINVAL},
		{"sub//inner.txt", -EINVAL},
		{"//file.txt", -EINVAL},
		{"file.txt/", -EINVAL},
		{"sub/", -EINVAL},
		{"/", -EINVAL},
		{"link", -ELOOP},
		{"dangling", -ELOOP},
		{"escape", -ELOOP},
		{"abs", -ELOOP},
		{"dirlink/inner.txt", -ELOOP},
		{"target_alt", -ELOOP},
		{"d_alt/f", -ELOOP},
		{"sub", -EISDIR},
		{"d", -EISDIR},
		{"missing", -ENOENT},
		{"...", -ENOENT},
		{"..a", -ENOENT},
		{".hidden", -ENOENT},
		{"file.txt", 0},
		{"sub/inner.txt", 0},
		{"d/f", 0},
	};
	struct fixture *fx = *state;

	require_openat2();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (int m = RES_MODE_READ; m <= RES_MODE_READ_WRITE; m++)
			expect_open(fx, cases[i].path, (enum res_mode)m, cases[i].err);
	/* A FIFO never blocks the broker: refused by type, or by the kernel
	 * (no reader) for write-only modes. */
	expect_open(fx, "fifo", RES_MODE_READ, -EPERM);
	expect_open(fx, "fifo", RES_MODE_READ_WRITE, -EPERM);
	expect_open(fx, "fifo", RES_MODE_WRITE, -ENXIO);
	expect_open(fx, "fifo", RES_MODE_APPEND, -ENXIO);
	assert_int_equal(res_open(fx->root_fd, NULL, RES_MODE_READ, &(int){0}), -EINVAL);
	assert_int_equal(res_open(-1, "file.txt", RES_MODE_READ, &(int){0}), -EBADF);
}

static void test_path_length(void **state)
{
	struct fixture *fx = *state;
	char *p;

	require_openat2();
	p = malloc(RES_PATH_MAX + 2);
	assert_non_null(p);
	/* "a/a/.../a" of exactly the maximum: passes our check, the kernel
	 * walks it and finds nothing. */
	for (size_t i = 0; i < RES_PATH_MAX; i++)
		p[i] = (i % 2) ? '/' : 'a';
	p[RES_PATH_MAX] = '\0';
	assert_true(RES_PATH_MAX % 2 == 1);
	expect_open(fx, p, RES_MODE_READ, -ENOENT);
	p[RES_PATH_MAX] = 'a';
	p[RES_PATH_MAX + 1] = '\0';
	expect_open(fx, p, RES_MODE_READ, -ENAMETOOLONG);
	free(p);
}

/* The root is a directory of /proc: magic links and plain symlinks there
 * are refused just the same. */
static void test_proc_magic_links(void **state)
{
	static const char *const magic[] = {
		"fd/0", "fd/1", "exe", "cwd/etc/passwd", "root/etc/passwd", "map_files"};
	int proc, self;

	require_openat2();
	(void)state;
	assert_int_equal(res_root_open("/proc/self", &self), 0);
	for (size_t i = 0; i < sizeof(magic) / sizeof(magic[0]); i++) {
		int fd = -77, r = res_open(self, magic[i], RES_MODE_READ, &fd);

		assert_true(r == -ELOOP || r == -EISDIR || r == -EPERM);
		assert_int_equal(fd, -77);
	}
	{
		int fd;

		/* A plain file under /proc/self still opens. */
		assert_int_equal(res_open(self, "status", RES_MODE_READ, &fd), 0);
		close(fd);
	}
	close(self);
	assert_int_equal(res_root_open("/proc", &proc), 0);
	/* /proc/self is an ordinary symlink: refused by RESOLVE_NO_SYMLINKS. */
	assert_int_equal(res_open(proc, "self/status", RES_MODE_READ, &(int){0}), -ELOOP);
	assert_int_equal(res_open(proc, "thread-self/status", RES_MODE_READ, &(int){0}), -ELOOP);
	close(proc);
	assert_int_equal(res_root_open("/nonexistent-conduit", &proc), -ENOENT);
	assert_int_equal(res_root_open("/etc/passwd", &proc), -ENOTDIR);
	assert_int_equal(res_root_open("", &proc), -EINVAL);
}

static void test_flag_matrix(void **state)
{
	static const struct {
		enum res_mode mode;
		int access;
	} modes[] = {
		{RES_MODE_READ, O_RDONLY},
		{RES_MODE_WRITE, O_WRONLY},
		{RES_MODE_APPEND, O_WRONLY | O_APPEND},
		{RES_MODE_READ_WRITE, O_RDWR},
	};
	static const int bad[] = {0, 5, -1, 3 | 0x40, O_RDWR | O_CREAT, O_TRUNC, 0x7fffffff};
	const int always = O_CLOEXEC | O_NOCTTY | O_NOFOLLOW;
	struct fixture *fx = *state;
	char buf[32];
	struct stat st;

	require_openat2();
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		int flags = -1, fd, fl;

		assert_int_equal(res_open_flags(modes[i].mode, &flags), 0);
		assert_int_equal(flags, modes[i].access | always);
		assert_int_equal(res_open(fx->root_fd, "file.txt", modes[i].mode, &fd), 0);
		fl = fcntl(fd, F_GETFL);
		assert_true(fl >= 0);
		/* Exactly the mode's bits (the kernel keeps O_NOFOLLOW and drops
		 * O_CLOEXEC and O_NOCTTY from the status flags): no O_NONBLOCK
		 * left over, no O_CREAT, O_TRUNC or wider access. */
		assert_int_equal(fl & ~KERNEL_O_LARGEFILE, modes[i].access | O_NOFOLLOW);
		assert_int_equal(fl & ~KERNEL_O_LARGEFILE, flags & ~(O_CLOEXEC | O_NOCTTY));
		assert_int_equal(fcntl(fd, F_GETFD), FD_CLOEXEC);
		/* What the fd can do follows from the mode. */
		if (modes[i].access == O_RDONLY) {
			assert_int_equal(write(fd, "x", 1), -1);
			assert_int_equal(errno, EBADF);
		} else {
			assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
			assert_int_equal(write(fd, "I", 1), 1);
		}
		if (modes[i].access == O_WRONLY || modes[i].access == (O_WRONLY | O_APPEND)) {
			assert_int_equal(read(fd, buf, 1), -1);
			assert_int_equal(errno, EBADF);
		}
		close(fd);
	}
	/* Nothing was truncated, the append landed at the end. */
	{
		int fd;
		ssize_t n;

		assert_int_equal(res_open(fx->root_fd, "file.txt", RES_MODE_READ, &fd), 0);
		n = read(fd, buf, sizeof(buf) - 1);
		assert_true(n >= 0);
		buf[n] = '\0';
		assert_string_equal(buf, "InsideI");
		close(fd);
	}
	/* No mode creates a file. */
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		expect_open(fx, "new-file", modes[i].mode, -ENOENT);
	assert_int_equal(fstatat(fx->root_fd, "new-file", &st, 0), -1);
	/* Any value outside the enum, including raw open flags, is refused. */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int flags = -77;

		assert_int_equal(res_open_flags((enum res_mode)bad[i], &flags), -EINVAL);
		assert_int_equal(flags, -77);
		expect_open(fx, "file.txt", (enum res_mode)bad[i], -EINVAL);
	}
}

struct swapper {
	const struct fixture *fx;
	atomic_bool stop;
	atomic_ulong swaps;
};

static void *swap_thread(void *arg)
{
	struct swapper *sw = arg;
	char a[256], b[256], c[256], d[256];

	at(sw->fx, "target", a, sizeof(a));
	at(sw->fx, "target_alt", b, sizeof(b));
	at(sw->fx, "d", c, sizeof(c));
	at(sw->fx, "d_alt", d, sizeof(d));
	while (!atomic_load(&sw->stop)) {
		/* Atomic exchanges: the name always exists, and is a symlink to
		 * the outside half of the time. */
		if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) < 0 ||
		    renameat2(AT_FDCWD, c, AT_FDCWD, d, RENAME_EXCHANGE) < 0)
			return (void *)1;
		atomic_fetch_add(&sw->swaps, 1);
	}
	return NULL;
}

/* `create`: a missing file is made 0600 for every writing mode, an existing
 * one is opened untouched (never truncated), reading never creates, and a
 * symlink or an escape is refused before anything is created. */
static void test_create(void **state)
{
	static const unsigned writing[] = {RES_MODE_WRITE, RES_MODE_APPEND, RES_MODE_READ_WRITE};
	struct fixture *fx = *state;
	char path[160], name[32], buf[32];
	struct stat st;
	int flags, fd;

	require_openat2();
	assert_int_equal(res_open_flags(RES_MODE_READ | RES_MODE_CREATE, &flags), -EINVAL);
	expect_open(fx, "new-r", RES_MODE_READ | RES_MODE_CREATE, -EINVAL);
	assert_int_equal(res_open_flags(RES_MODE_APPEND | RES_MODE_CREATE, &flags), 0);
	assert_int_equal(flags, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	for (size_t i = 0; i < sizeof(writing) / sizeof(writing[0]); i++) {
		snprintf(name, sizeof(name), "new-%zu", i);
		expect_open(fx, name, writing[i], -ENOENT); /* no create: nothing made */
		assert_int_equal(res_open(fx->root_fd, name, writing[i] | RES_MODE_CREATE, &fd), 0);
		assert_true(write(fd, "x", 1) == 1);
		close(fd);
		snprintf(path, sizeof(path), "%s/%s", fx->root, name);
		assert_int_equal(lstat(path, &st), 0);
		assert_true(S_ISREG(st.st_mode));
		assert_int_equal(st.st_mode & 07777, 0600);
		assert_int_equal(st.st_size, 1);
		/* Again: the existing file keeps its byte. */
		assert_int_equal(res_open(fx->root_fd, name, writing[i] | RES_MODE_CREATE, &fd), 0);
		close(fd);
		assert_int_equal(lstat(path, &st), 0);
		assert_int_equal(st.st_size, 1);
		unlink(path);
	}
	/* The existing file.txt keeps its content under create. */
	assert_int_equal(res_open(fx->root_fd, "file.txt", RES_MODE_APPEND | RES_MODE_CREATE, &fd),
			 0);
	close(fd);
	fd = open(fx->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	int ffd = openat(fd, "file.txt", O_RDONLY | O_CLOEXEC);
	close(fd);
	assert_true(ffd >= 0);
	assert_true(read(ffd, buf, sizeof(buf)) > 0);
	close(ffd);
	/* A dangling symlink is not followed to create its target, nothing is
	 * created outside the root, and a missing directory is not made. */
	expect_open(fx, "dangling", RES_MODE_WRITE | RES_MODE_CREATE, -ELOOP);
	expect_open(fx, "escape", RES_MODE_APPEND | RES_MODE_CREATE, -ELOOP);
	expect_open(fx, "dirlink/made", RES_MODE_WRITE | RES_MODE_CREATE, -ELOOP);
	expect_open(fx, "../outside/made", RES_MODE_WRITE | RES_MODE_CREATE, -EINVAL);
	expect_open(fx, "nodir/made", RES_MODE_WRITE | RES_MODE_CREATE, -ENOENT);
	snprintf(path, sizeof(path), "%s/made", fx->outside);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_symlink_swap_race(void **state)
{
	struct fixture *fx = *state;
	struct swapper sw = {.fx = fx};
	unsigned long opened = 0, refused = 0;
	pthread_t t;
	void *ret;

	require_openat2();
	assert_int_equal(pthread_create(&t, NULL, swap_thread, &sw), 0);
	while (atomic_load(&sw.swaps) == 0)
		sched_yield();
	for (int i = 0; i < SWAP_ITERATIONS; i++) {
		const char *path = (i % 2) ? "target" : "d/f";
		int fd = -1, r = res_open(fx->root_fd, path, RES_MODE_READ, &fd);
		struct stat st;
		char buf[16];
		ssize_t n;

		if (r < 0) {
			/* ELOOP: a symlink was there; EAGAIN: the kernel saw a
			 * rename during the walk and refused rather than guess. */
			if (r != -ELOOP && r != -EAGAIN && r != -ENOENT)
				print_error("iteration %d %s: %d\n", i, path, r);
			assert_true(r == -ELOOP || r == -EAGAIN || r == -ENOENT);
			refused++;
			continue;
		}
		assert_int_equal(fstat(fd, &st), 0);
		assert_int_equal(st.st_dev, fx->good.st_dev);
		assert_int_equal(st.st_ino, fx->good.st_ino);
		n = read(fd, buf, sizeof(buf) - 1);
		assert_true(n >= 0);
		buf[n] = '\0';
		assert_string_equal(buf, "inside");
		close(fd);
		opened++;
	}
	atomic_store(&sw.stop, true);
	assert_int_equal(pthread_join(t, &ret), 0);
	assert_null(ret);
	assert_int_equal(opened + refused, SWAP_ITERATIONS);
	print_message("swap race: %lu opens inside, %lu refused, %lu swaps, 0 escapes\n", opened,
		      refused, (unsigned long)atomic_load(&sw.swaps));
}

/* ---- sockets ---- */

static void assert_sock_flags(int fd)
{
	assert_int_equal(fcntl(fd, F_GETFD), FD_CLOEXEC);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
}

static int sockopt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
	return v;
}

static void wait_connected(int fd, int r)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};

	assert_true(r == 0 || r == 1);
	while (r == 1) {
		assert_int_equal(poll(&p, 1, -1), 1);
		r = res_connect_finish(fd);
		assert_true(r == 0 || r == -EINPROGRESS);
		r = r == 0 ? 0 : 1;
	}
	assert_int_equal(res_connect_finish(fd), 0);
}

static int accept_one(int lfd)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	int fd;

	assert_int_equal(poll(&p, 1, -1), 1);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

static void test_tcp_loopback(void **state)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char hp[32];
	int lfd, cfd, afd, r;

	(void)state;
	assert_int_equal(res_listen_tcp("127.0.0.1:0", 16, &lfd), 0);
	assert_sock_flags(lfd);
	assert_int_equal(sockopt(lfd, SOL_SOCKET, SO_REUSEADDR), 1);
	assert_int_equal(sockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN), 1);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	assert_int_equal(sin.sin_family, AF_INET);
	assert_int_equal(ntohl(sin.sin_addr.s_addr), INADDR_LOOPBACK);
	assert_true(ntohs(sin.sin_port) > 0);
	snprintf(hp, sizeof(hp), "127.0.0.1:%u", ntohs(sin.sin_port));
	r = res_connect_tcp(hp, &cfd);
	wait_connected(cfd, r);
	assert_sock_flags(cfd);
	afd = accept_one(lfd);
	assert_int_equal(write(cfd, "ping", 4), 4);
	{
		char buf[8];
		struct pollfd p = {.fd = afd, .events = POLLIN};

		assert_int_equal(poll(&p, 1, -1), 1);
		assert_int_equal(read(afd, buf, sizeof(buf)), 4);
	}
	close(afd);
	close(cfd);
	close(lfd);
	/* Nobody listens there any more: refused, now or at finish. */
	r = res_connect_tcp(hp, &cfd);
	if (r == 1) {
		struct pollfd p = {.fd = cfd, .events = POLLOUT};

		assert_int_equal(poll(&p, 1, -1), 1);
		assert_int_equal(res_connect_finish(cfd), -ECONNREFUSED);
		close(cfd);
	} else {
		assert_int_equal(r, -ECONNREFUSED);
	}
}

static void test_hostport_matrix(void **state)
{
	static const char *const bad[] = {
		"",
		":80",
		"127.0.0.1",
		"127.0.0.1:",
		"127.0.0.1:0",
		"127.0.0.1:65536",
		"127.0.0.1:99999",
		"127.0.0.1:123456",
		"127.0.0.1:080",
		"127.0.0.1:+80",
		"127.0.0.1:-1",
		"127.0.0.1: 80",
		"127.0.0.1:80 ",
		" 127.0.0.1:80",
		"127.0.0.1:8O",
		"localhost:80",
		"127.1:80",
		"127.0.0.01:80",
		"127.0.0.1.1:80",
		"::1:80",
		"[::1]80",
		"[::1:80",
		"[::1]:",
		"[]:80",
		"[127.0.0.1]:80",
		"[::1]:80:80",
		"1:2:3:4:5:6:7:8:9:80",
	};
	int fd = -77;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = res_connect_tcp(bad[i], &fd);

		if (r != -EINVAL)
			print_error("\"%s\": %d\n", bad[i], r);
		assert_int_equal(r, -EINVAL);
		assert_int_equal(fd, -77);
	}
	assert_int_equal(res_connect_tcp(NULL, &fd), -EINVAL);
	/* Port 0 is an ephemeral port: for listen only. */
	assert_int_equal(res_listen_tcp("127.0.0.1:00", 1, &fd), -EINVAL);
	assert_int_equal(res_listen_tcp("localhost:0", 1, &fd), -EINVAL);
	assert_int_equal(fd, -77);
}

static void test_backlog_limits(void **state)
{
	int fd = -77;

	(void)state;
	assert_int_equal(res_listen_tcp("127.0.0.1:0", 0, &fd), -EINVAL);
	assert_int_equal(res_listen_tcp("127.0.0.1:0", -1, &fd), -EINVAL);
	assert_int_equal(res_listen_tcp("127.0.0.1:0", RES_BACKLOG_MAX + 1, &fd), -EINVAL);
	assert_int_equal(fd, -77);
	assert_int_equal(res_listen_tcp("127.0.0.1:0", RES_BACKLOG_MAX, &fd), 0);
	close(fd);
	assert_int_equal(res_listen_tcp("127.0.0.1:0", 1, &fd), 0);
	close(fd);
}

static void test_unix_sockets(void **state)
{
	struct fixture *fx = *state;
	struct sockaddr_un sun;
	char path[sizeof(sun.sun_path) + 8];
	int lfd, lfd2 = -77, cfd, afd, r;
	struct stat st;

	snprintf(path, sizeof(path), "%s/sock", fx->dir);
	assert_int_equal(res_listen_unix(path, 8, &lfd), 0);
	assert_sock_flags(lfd);
	assert_int_equal(sockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN), 1);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	/* An existing path is never replaced. */
	assert_int_equal(res_listen_unix(path, 8, &lfd2), -EADDRINUSE);
	assert_int_equal(lfd2, -77);
	r = res_connect_unix(path, &cfd);
	assert_int_equal(r, 0);
	assert_int_equal(res_connect_finish(cfd), 0);
	assert_sock_flags(cfd);
	afd = accept_one(lfd);
	close(afd);
	close(cfd);
	close(lfd);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(res_connect_unix(path, &cfd), -ENOENT);
	assert_int_equal(res_connect_unix("relative/sock", &cfd), -EINVAL);
	assert_int_equal(res_listen_unix("sock", 1, &cfd), -EINVAL);
	assert_int_equal(res_connect_unix("", &cfd), -EINVAL);
	assert_int_equal(res_connect_unix(NULL, &cfd), -EINVAL);
	assert_int_equal(res_listen_unix(path, 0, &cfd), -EINVAL);
	/* sun_path holds 107 bytes and the NUL: exactly that fits, one more
	 * does not. */
	memset(path, 'x', sizeof(path));
	memcpy(path, "/tmp/", 5);
	path[sizeof(sun.sun_path) - 1] = '\0';
	assert_int_equal(res_listen_unix(path, 1, &lfd), 0);
	close(lfd);
	assert_int_equal(unlink(path), 0);
	path[sizeof(sun.sun_path) - 1] = 'x';
	path[sizeof(sun.sun_path)] = '\0';
	assert_int_equal(res_listen_unix(path, 1, &lfd), -ENAMETOOLONG);
	assert_int_equal(res_connect_unix(path, &lfd), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proc_magic_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flag_matrix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_swap_race, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_loopback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostport_matrix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backlog_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unix_sockets, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
