/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox-run.h"

const char *probe_path;
char probe_tmpdir[64];

void probe_spec_init(struct probe_spec *ps, const char *const *args)
{
	size_t n = 0;

	memset(ps, 0, sizeof(*ps));
	ps->argv[n++] = "sandbox-probe";
	for (; args && args[n - 1] && n < 7; n++)
		ps->argv[n] = args[n - 1];
	ps->argv[n] = NULL;
	ps->allow[0] = "getdents64"; /* the probe lists /proc/self/fd */
	ps->paths[0] = (struct layer_path){"/proc", false};
	ps->paths[1] = (struct layer_path){probe_tmpdir, true};
	ps->env[0] = "CONDUIT_PROBE_ENV";

	struct layer_spec *s = &ps->spec;
	s->name = "probe";
	s->exec = probe_path;
	s->argv = ps->argv;
	s->nargv = n;
	s->env_allow = ps->env;
	s->nenv_allow = 1;
	s->user_kind = LAYER_USER_DYNAMIC;
	s->profiles = LAYER_PROFILE_STDIO;
	s->syscalls_allow = ps->allow;
	s->nsyscalls_allow = 1;
	s->landlock = ps->paths;
	s->nlandlock = 2;
	s->namespaces = LAYER_NS_IPC | LAYER_NS_UTS;
	s->limits.memory = 256u << 20;
	s->limits.files = 32;
	s->limits.procs = 0;
	s->limits.cpu = 60;
	s->limits.fsize = 1u << 20;
	s->has_network_resource = false;
}

void probe_read_all(int fd, struct probe_result *res)
{
	for (;;) {
		if (res->out_len >= sizeof(res->out) - 1)
			break;
		size_t room = sizeof(res->out) - 1 - res->out_len;
		ssize_t n = read(fd, &res->out[res->out_len], room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (size_t)n > room)
			break;
		res->out_len += (size_t)n;
	}
	res->out[res->out_len] = '\0';
}

void probe_run(const struct layer_spec *spec, int fail_step, struct probe_result *res)
{
	struct sandbox_options opts;
	struct sandbox_plan *plan = NULL;
	int out[2];
	pid_t pid;

	memset(res, 0, sizeof(*res));
	res->wait_status = -1;
	if (pipe2(out, O_CLOEXEC) < 0)
		abort();
	sandbox_options_init(&opts);
	opts.stdio[1] = out[1];
	opts.fail_step = (enum sandbox_step)fail_step;
	res->plan_err = sandbox_plan_new(spec, &opts, &plan);
	if (res->plan_err < 0)
		goto out;
	if (sandbox_plan_warning(plan, res->warning, sizeof(res->warning)) < 0)
		abort();
	res->spawn_err = sandbox_spawn(plan, &pid, &res->failure);
	close(out[1]);
	out[1] = -1;
	if (res->spawn_err < 0)
		goto out;
	probe_read_all(out[0], res);
	while (waitpid(pid, &res->wait_status, 0) < 0 && errno == EINTR)
		;
out:
	res->out[res->out_len] = '\0';
	if (out[1] >= 0)
		close(out[1]);
	close(out[0]);
	sandbox_plan_free(plan);
}

const char *probe_value(const struct probe_result *res, const char *key, char *buf, size_t len)
{
	size_t klen = strlen(key);

	for (const char *p = res->out; *p;) {
		const char *eol = strchr(p, '\n');
		size_t l = eol ? (size_t)(eol - p) : strlen(p);
		if (l > klen && strncmp(p, key, klen) == 0 && (p[klen] == ' ' || p[klen] == '\t')) {
			const char *v = p + klen;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t vl = l - (size_t)(v - p);
			if (vl >= len)
				vl = len - 1;
			memcpy(buf, v, vl);
			buf[vl] = '\0';
			return buf;
		}
		p += l + (eol ? 1 : 0);
	}
	return NULL;
}

int probe_become_nobody(char *exec_path, size_t len)
{
	/* Opened while still root: the build tree may not be reachable by
	 * nobody (CI builds under /root), the magic link is. */
	int fd = open(probe_path, O_PATH);
	if (fd < 0)
		return -errno;
	if ((size_t)snprintf(exec_path, len, "/proc/self/fd/%d", fd) >= len)
		return -ENAMETOOLONG;
	if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
	    setresuid(65534, 65534, 65534) < 0)
		return -errno;
	return 0;
}

int probe_setup(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s PROBE [GROUP]\n", argv[0]);
		return -1;
	}
	/* The spec wants an absolute exec path. */
	static char abs[4096];
	if (!realpath(argv[1], abs))
		return -1;
	probe_path = abs;
	snprintf(probe_tmpdir, sizeof(probe_tmpdir), "/tmp/conduit-sbx.XXXXXX");
	if (!mkdtemp(probe_tmpdir))
		return -1;
	/* Layers run under their own uids: the scratch dir must admit them. */
	if (chmod(probe_tmpdir, 01777) < 0)
		return -1;
	setenv("CONDUIT_PROBE_ENV", "visible", 1);
	setenv("CONDUIT_PROBE_SECRET", "must-not-pass", 1);
	return 0;
}

void probe_teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", probe_tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", probe_tmpdir);
}
