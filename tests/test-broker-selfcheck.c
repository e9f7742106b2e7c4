/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "selfcheck.h"

static void test_fd_count_follows_open_close(void **state)
{
	size_t base, n;
	int fd[3];

	(void)state;
	assert_int_equal(selfcheck_fd_count(0, &base), 0);
	assert_true(base >= 3);
	for (int i = 0; i < 3; i++) {
		fd[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		assert_true(fd[i] >= 0);
		assert_int_equal(selfcheck_fd_open(0, fd[i]), 1);
		assert_int_equal(selfcheck_fd_count(0, &n), 0);
		assert_int_equal(n, base + (size_t)i + 1);
	}
	for (int i = 0; i < 3; i++) {
		close(fd[i]);
		assert_int_equal(selfcheck_fd_open(0, fd[i]), 0);
	}
	assert_int_equal(selfcheck_fd_count(0, &n), 0);
	assert_int_equal(n, base);
	/* Asking by our own pid counts the same (minus the counting fd). */
	assert_int_equal(selfcheck_fd_count(getpid(), &n), 0);
	assert_int_equal(n, base);
	assert_int_equal(selfcheck_fd_open(0, -1), -EINVAL);
}

static void test_memory_figures(void **state)
{
	const size_t size = 16u << 20;
	struct selfcheck a, b;
	char *p;

	(void)state;
	assert_int_equal(selfcheck_read(0, &a), 0);
	assert_true(a.rss_kb > 0);
	assert_true(a.hwm_kb >= a.rss_kb);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	memset(p, 1, size);
	assert_int_equal(selfcheck_read(0, &b), 0);
	/* Touching 16 MiB shows up (allow for the kernel's lazy counters). */
	assert_true(b.rss_kb >= a.rss_kb + (size >> 10) / 2);
	assert_true(b.hwm_kb >= b.rss_kb);
	assert_int_equal(munmap(p, size), 0);
	assert_int_equal(selfcheck_read(0, &a), 0);
	/* The peak stays (RSS counters are per-cpu approximations, hence
	 * the half-size margin rather than an exact comparison). */
	assert_true(a.hwm_kb >= a.rss_kb + (size >> 10) / 2);
}

static void test_other_process(void **state)
{
	struct selfcheck c = {.fds = 99}, d;
	int go[2], ready[2];
	pid_t pid;
	char b;

	(void)state;
	assert_int_equal(pipe2(go, O_CLOEXEC), 0);
	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Signal readiness, close ready[1] on request, exit at EOF on
		 * go (which also comes if the parent fails and exits). */
		close(go[1]);
		close(ready[0]);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		while (read(go[0], &b, 1) == 1)
			close(ready[1]);
		_exit(0);
	}
	close(go[0]);
	close(ready[1]);
	assert_int_equal(read(ready[0], &b, 1), 1);
	assert_int_equal(selfcheck_read(pid, &c), 0);
	assert_int_equal(selfcheck_fd_open(pid, go[1]), 0);
	assert_int_equal(selfcheck_fd_open(pid, ready[1]), 1);
	assert_true(c.fds >= 5); /* stdio, go[0], ready[1] at least */
	assert_true(c.rss_kb > 0);
	/* It closes one fd; EOF on ready says it has. */
	assert_int_equal(write(go[1], "c", 1), 1);
	assert_int_equal(read(ready[0], &b, 1), 0);
	assert_int_equal(selfcheck_read(pid, &d), 0);
	assert_int_equal(d.fds, c.fds - 1);
	assert_int_equal(selfcheck_fd_open(pid, ready[1]), 0);
	close(go[1]);
	close(ready[0]);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	/* Gone: nothing to read, the output is left alone. */
	c.fds = 99;
	assert_int_equal(selfcheck_read(pid, &c), -ENOENT);
	assert_int_equal(c.fds, 99);
	assert_int_equal(selfcheck_read(-1, &c), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fd_count_follows_open_close),
		cmocka_unit_test(test_memory_figures),
		cmocka_unit_test(test_other_process),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
