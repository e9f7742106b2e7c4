/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker-harness.h"
#include "selfcheck.h"

const char *bk_broker_path;
const char *bk_layer_path;

void bk_init(struct bk *bk)
{
	memset(bk, 0, sizeof(*bk));
	bk->pid = -1;
	bk->pidfd = -1;
	bk->status = -1;
	snprintf(bk->dir, sizeof(bk->dir), "/tmp/conduit-bk.XXXXXX");
	assert_non_null(mkdtemp(bk->dir));
	assert_int_equal(chmod(bk->dir, 0755), 0);
	snprintf(bk->policy, sizeof(bk->policy), "%s/test.policy", bk->dir);
	snprintf(bk->audit, sizeof(bk->audit), "%s/audit.log", bk->dir);
	snprintf(bk->log, sizeof(bk->log), "%s/broker.err", bk->dir);
}

static void replace_all(char *out, size_t cap, const char *in, const char *a, const char *va,
			const char *b, const char *vb)
{
	size_t o = 0;

	while (*in) {
		const char *v = NULL;
		size_t skip = 0;
		if (strncmp(in, a, strlen(a)) == 0)
			v = va, skip = strlen(a);
		else if (strncmp(in, b, strlen(b)) == 0)
			v = vb, skip = strlen(b);
		if (v) {
			size_t n = strlen(v);
			assert_true(o + n < cap);
			memcpy(out + o, v, n);
			o += n;
			in += skip;
		} else {
			assert_true(o + 1 < cap);
			out[o++] = *in++;
		}
	}
	out[o] = 0;
}

void bk_write_file(struct bk *bk, const char *name, const char *text)
{
	char path[192], tmp[200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", bk->dir, name);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	f = fopen(tmp, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	/* The policy compiler refuses group- or world-writable files. */
	assert_int_equal(chmod(tmp, 0644), 0);
	assert_int_equal(rename(tmp, path), 0);
}

void bk_write_policy(struct bk *bk, const char *text)
{
	static char buf[16384];

	replace_all(buf, sizeof(buf), text, "@LAYER@", bk_layer_path, "@DIR@", bk->dir);
	bk_write_file(bk, "test.policy", buf);
}

void bk_start(struct bk *bk)
{
	pid_t parent = getpid(), pid;
	int fd;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* A test killed (a timeout) or ending after a failed assertion
		 * skipped bk_cleanup(): its broker must not outlive the test
		 * process and keep layers running. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
			_exit(126);
		fd = open(bk->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		char hb[32], ct[32];
		snprintf(hb, sizeof(hb), "%d", bk->heartbeat_ms ? bk->heartbeat_ms : 10000);
		snprintf(ct, sizeof(ct), "%d", bk->call_timeout_ms ? bk->call_timeout_ms : 5000);
		execl(bk_broker_path, bk_broker_path, "--policy", bk->policy, "--audit", bk->audit,
		      "--heartbeat", hb, "--call-timeout", ct, "--foreground", (char *)NULL);
		_exit(127);
	}
	bk->pid = pid;
	bk->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	assert_true(bk->pidfd >= 0);
}

/* The broker's stderr so far, NUL-terminated, in a static buffer. */
static const char *log_text(struct bk *bk)
{
	static char buf[1 << 20];
	size_t got = 0;
	int fd = open(bk->log, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	buf[0] = 0;
	if (fd < 0)
		return buf;
	while (got < sizeof(buf) - 1 && (r = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)r;
	close(fd);
	buf[got] = 0;
	return buf;
}

size_t bk_log_count(struct bk *bk, const char *needle)
{
	size_t n = 0;

	for (const char *p = log_text(bk); (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

bool bk_log_after(struct bk *bk, const char *needle, char *out, size_t cap)
{
	const char *p = strstr(log_text(bk), needle);
	size_t n;

	if (!p || cap == 0)
		return false;
	p += strlen(needle);
	n = strcspn(p, "\n");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, p, n);
	out[n] = 0;
	return true;
}

bool bk_wait_log(struct bk *bk, const char *needle, size_t n, int timeout_ms)
{
	const struct timespec tick = {0, 20 * 1000 * 1000};

	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		struct pollfd p = {.fd = bk->pidfd, .events = POLLIN};
		if (bk_log_count(bk, needle) >= n)
			return true;
		if (bk->pidfd >= 0 && poll(&p, 1, 0) == 1) {
			fprintf(stderr, "# the broker exited\n");
			break;
		}
		nanosleep(&tick, NULL);
	}
	fprintf(stderr, "# timed out waiting for %zu x '%s'; broker log:\n", n, needle);
	{
		char cmd[256];
		snprintf(cmd, sizeof(cmd), "sed 's/^/#   /' %s >&2", bk->log);
		if (system(cmd) != 0)
			fprintf(stderr, "# (cannot show the log)\n");
	}
	return false;
}

void bk_signal(struct bk *bk, int sig)
{
	assert_int_equal(syscall(SYS_pidfd_send_signal, bk->pidfd, sig, NULL, 0), 0);
}

int bk_stop(struct bk *bk)
{
	struct pollfd p = {.fd = bk->pidfd, .events = POLLIN};
	int st = -1;

	if (bk->pid < 0)
		return bk->status;
	(void)syscall(SYS_pidfd_send_signal, bk->pidfd, SIGTERM, NULL, 0);
	if (poll(&p, 1, 15000) != 1) {
		fprintf(stderr, "# broker ignored SIGTERM: killing it\n");
		(void)syscall(SYS_pidfd_send_signal, bk->pidfd, SIGKILL, NULL, 0);
	}
	assert_int_equal(waitpid(bk->pid, &st, 0), bk->pid);
	close(bk->pidfd);
	bk->pidfd = -1;
	bk->pid = -1;
	bk->status = st;
	return st;
}

static void copy_text(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

static int on_record(const struct audit_record *rec, size_t file, uint64_t line, void *userdata)
{
	struct bk *bk = userdata;
	struct bk_record *r;

	(void)file;
	(void)line;
	if (bk->nrec == BK_RECORDS_MAX)
		return -E2BIG;
	r = &bk->rec[bk->nrec++];
	r->event = rec->event;
	copy_text(r->layer, sizeof(r->layer), rec->layer);
	copy_text(r->method, sizeof(r->method), rec->method);
	copy_text(r->klass, sizeof(r->klass), rec->klass);
	copy_text(r->rule, sizeof(r->rule), rec->rule);
	copy_text(r->signal, sizeof(r->signal), rec->signal);
	copy_text(r->reason, sizeof(r->reason), rec->reason);
	r->verdict = rec->verdict;
	r->has_code = rec->has_code;
	r->code = rec->code;
	r->line = rec->policy_line;
	r->nargs = rec->nargs;
	return 0;
}

void bk_read_audit(struct bk *bk, bool closed)
{
	const char *paths[] = {bk->audit};
	struct audit_verify_opts o = {
		.require_closed = closed, .on_record = on_record, .userdata = bk};

	bk->nrec = 0;
	assert_int_equal(audit_verify_files(paths, 1, &o, &bk->verify), 0);
	if (bk->verify.status != AUDIT_OK)
		fprintf(stderr, "# audit: %s at line %llu: %s\n",
			audit_status_name(bk->verify.status), (unsigned long long)bk->verify.line,
			bk->verify.reason);
	assert_int_equal(bk->verify.status, AUDIT_OK);
}

void bk_stop_clean(struct bk *bk)
{
	int st = bk_stop(bk);

	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	bk_read_audit(bk, true);
	assert_int_equal(bk->rec[0].event, AUDIT_EV_START);
	assert_int_equal(bk->rec[bk->nrec - 1].event, AUDIT_EV_STOP);
	assert_int_equal(bk_count(bk, AUDIT_EV_START, NULL, NULL, NULL), 1);
	assert_int_equal(bk_count(bk, AUDIT_EV_STOP, NULL, NULL, NULL), 1);
}

void bk_expect_stopped(const struct bk *bk, const char *layer)
{
	const struct bk_record *r = bk_find(bk, AUDIT_EV_EXIT, layer, NULL, 0);

	assert_non_null(r);
	if (r->has_code)
		assert_int_equal(r->code, 0);
	else
		assert_string_equal(r->signal, "SIGTERM");
}

static bool rec_match(const struct bk_record *r, enum audit_event ev, const char *layer,
		      const char *method, const char *klass)
{
	return r->event == ev && (!layer || strcmp(r->layer, layer) == 0) &&
	       (!method || strcmp(r->method, method) == 0) &&
	       (!klass || strcmp(r->klass, klass) == 0);
}

size_t bk_count(const struct bk *bk, enum audit_event ev, const char *layer, const char *method,
		const char *klass)
{
	size_t n = 0;

	for (size_t i = 0; i < bk->nrec; i++)
		n += rec_match(&bk->rec[i], ev, layer, method, klass);
	return n;
}

const struct bk_record *bk_find(const struct bk *bk, enum audit_event ev, const char *layer,
				const char *method, size_t nth)
{
	for (size_t i = 0; i < bk->nrec; i++)
		if (rec_match(&bk->rec[i], ev, layer, method, NULL) && nth-- == 0)
			return &bk->rec[i];
	return NULL;
}

size_t bk_fd_count(struct bk *bk)
{
	size_t n = 0;

	assert_int_equal(selfcheck_fd_count(bk->pid, &n), 0);
	return n;
}

void bk_cleanup(struct bk *bk)
{
	char cmd[128];

	if (bk->pid > 0) {
		(void)syscall(SYS_pidfd_send_signal, bk->pidfd, SIGKILL, NULL, 0);
		(void)waitpid(bk->pid, NULL, 0);
		close(bk->pidfd);
		bk->pid = -1;
	}
	if (bk->dir[0] && getenv("CONDUIT_TEST_KEEP_AUDIT")) {
		/* Keep the run's audit log (docs/audit.md: the checker's
		 * throughput is measured on such logs). */
		char keep[512];
		const char *to = getenv("CONDUIT_TEST_KEEP_AUDIT"), *id = strrchr(bk->dir, '/') + 1;
		snprintf(keep, sizeof(keep), "cp '%s' '%s/%s.log' && cp '%s' '%s/%s.policy'",
			 bk->audit, to, id, bk->policy, to, id);
		if (system(keep) != 0)
			fprintf(stderr, "# (cannot keep the audit log)\n");
	}
	if (bk->dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", bk->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "# (cannot show the log)\n");
	}
}

int bk_main_paths(int argc, char **argv, int n, const char *usage, char **ret)
{
	if (argc < n + 1) {
		fprintf(stderr, "usage: %s %s\n", argv[0], usage);
		return 2;
	}
	for (int i = 0; i < n; i++) {
		ret[i] = realpath(argv[i + 1], NULL);
		if (!ret[i]) {
			perror(argv[i + 1]);
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	return 0;
}
