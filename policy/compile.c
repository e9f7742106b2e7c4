/* SPDX-License-Identifier: MIT */
/*
 * Compiler entry points: read and vet the file, validate the bytes, parse,
 * then link: cross-layer checks (providers, subscriptions, contradictions,
 * expect lines) and the indexes the matcher uses.  Any error rejects the
 * whole file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parse.h"

/* Bytes the language never contains: NUL, control characters other than
 * tab and newline (CR only before LF), invalid or overlong UTF-8. */
static void source_validate(struct diag_ctx *d)
{
	const unsigned char *s = (const unsigned char *)d->src;
	for (size_t i = 0; i < d->len && !d->stop;) {
		unsigned char c = s[i];
		if (c < 0x80) {
			if (c == 0)
				diag_at(d, POLICY_SEV_ERROR, i, 1, "NUL byte in the policy");
			else if (c == '\r' && !(i + 1 < d->len && s[i + 1] == '\n'))
				diag_at(d, POLICY_SEV_ERROR, i, 1,
					"carriage return not before a newline");
			else if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
				diag_at(d, POLICY_SEV_ERROR, i, 1, "control character 0x%02x", c);
			i++;
			continue;
		}
		size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
		bool ok = n != 0 && c >= 0xc2 && c <= 0xf4 && i + n <= d->len;
		uint32_t cp = ok ? c & (0x7fu >> n) : 0;
		for (size_t k = 1; ok && k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				ok = false;
			cp = (cp << 6) | (s[i + k] & 0x3fu);
		}
		if (ok && ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
			   (cp >= 0xd800 && cp <= 0xdfff)))
			ok = false;
		if (!ok) {
			diag_at(d, POLICY_SEV_ERROR, i, 1, "invalid UTF-8");
			i++;
			continue;
		}
		i += n;
	}
}

struct print_ctx {
	FILE *f;
};

static void diag_to_file(void *ud, const struct policy_diag *d)
{
	struct print_ctx *pc = ud;
	if (pc->f)
		policy_diag_print(pc->f, d);
}

static void diag_file(policy_diag_fn fn, void *ud, const char *file, const char *msg)
{
	struct policy_diag d = {
		.file = file, .severity = POLICY_SEV_ERROR, .message = msg, .span = 1};
	if (fn)
		fn(ud, &d);
}

int policy_compile_buffer_cb(const char *name, const char *text, size_t len, policy_diag_fn fn,
			     void *userdata, struct policy **ret_policy)
{
	if (!name || (!text && len) || !ret_policy)
		return -EINVAL;
	if (len > POLICY_FILE_MAX) {
		diag_file(fn, userdata, name, "policy larger than 1 MiB");
		return -EFBIG;
	}
	/* Generous upper bound of what len bytes can compile to (every byte
	 * of a rule or constraint costs well under 128 bytes of arena); the
	 * mapping is sparse, so the bound costs address space only. */
	struct arena a;
	int r = arena_init(&a, 4u * 1024 * 1024 + len * 128);
	if (r < 0)
		return r;
	struct policy *p = arena_alloc(&a, sizeof(*p), _Alignof(struct policy));
	char *src = arena_strndup(&a, text ? text : "", len);
	char *nm = arena_strndup(&a, name, strlen(name));
	if (!p || !src || !nm) {
		arena_release(&a);
		return -ENOMEM;
	}
	p->name = nm;
	p->source = src;
	p->source_len = len;

	struct diag_ctx d = {.file = nm, .src = src, .len = len, .fn = fn, .userdata = userdata};
	source_validate(&d);
	if (d.nerrors) {
		r = -EINVAL;
		goto fail;
	}
	struct parser ps = {.d = &d, .a = &a, .p = p};
	lexer_init(&ps.lx, &d, src, len);
	if (!parse_file(&ps) || compile_link(&ps) < 0 || a.failed) {
		if (!d.stop)
			diag_at(&d, POLICY_SEV_ERROR, SIZE_MAX, 0, "policy too large to compile");
		r = -E2BIG;
		goto fail;
	}
	if (d.nerrors) {
		r = -EINVAL;
		goto fail;
	}
	p->arena = a;
	r = arena_seal(&a);
	if (r < 0)
		goto fail;
	*ret_policy = p;
	return 0;
fail:
	arena_release(&a);
	return r;
}

int policy_compile_buffer(const char *name, const char *text, size_t len, FILE *diag,
			  struct policy **ret_policy)
{
	struct print_ctx pc = {diag};
	return policy_compile_buffer_cb(name, text, len, diag_to_file, &pc, ret_policy);
}

int policy_compile_file_cb(const char *path, policy_diag_fn fn, void *userdata,
			   struct policy **ret_policy)
{
	char msg[256];
	char *buf = NULL;
	int r;
	if (!path || !ret_policy)
		return -EINVAL;
	/* O_NOFOLLOW: a symlink could be swapped to point anywhere; checks
	 * below are on the opened file (fstat), so a rename after the check
	 * cannot substitute another file. */
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		snprintf(msg, sizeof(msg), "cannot open: %s",
			 r == -ELOOP ? "is a symbolic link" : strerror(-r));
		diag_file(fn, userdata, path, msg);
		return r;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		diag_file(fn, userdata, path, "cannot stat");
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		diag_file(fn, userdata, path, "not a regular file");
		goto out;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		r = -EPERM;
		diag_file(fn, userdata, path, "owned by another user (must be root or the caller)");
		goto out;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		r = -EPERM;
		diag_file(fn, userdata, path, "writable by group or others (chmod go-w)");
		goto out;
	}
	if (st.st_size > POLICY_FILE_MAX) {
		r = -EFBIG;
		diag_file(fn, userdata, path, "policy larger than 1 MiB");
		goto out;
	}
	buf = malloc(POLICY_FILE_MAX + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, POLICY_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			diag_file(fn, userdata, path, "read error");
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > POLICY_FILE_MAX) {
			r = -EFBIG; /* grew after fstat */
			diag_file(fn, userdata, path, "policy larger than 1 MiB");
			goto out;
		}
	}
	r = policy_compile_buffer_cb(path, buf, len, fn, userdata, ret_policy);
out:
	free(buf);
	close(fd);
	return r;
}

int policy_compile_file(const char *path, FILE *diag, struct policy **ret_policy)
{
	struct print_ctx pc = {diag};
	return policy_compile_file_cb(path, diag_to_file, &pc, ret_policy);
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	struct arena a = p->arena; /* p lives inside the mapping */
	arena_release(&a);
}

/* ---- Accessors ---- */

const char *policy_file_name(const struct policy *p)
{
	return p->name;
}

const char *policy_source(const struct policy *p, size_t *ret_len)
{
	if (ret_len)
		*ret_len = p->source_len;
	return p->source;
}

const struct policy_audit *policy_audit(const struct policy *p)
{
	return &p->audit;
}

size_t policy_layer_count(const struct policy *p)
{
	return p ? p->nlayers : 0;
}

const struct policy_layer *policy_layer_at(const struct policy *p, size_t i)
{
	return p && i < p->nlayers ? &p->layers[i] : NULL;
}

const struct policy_layer *policy_layer(const struct policy *p, const char *name)
{
	if (!p || !name || !p->nlayers)
		return NULL;
	size_t len = strlen(name);
	for (uint32_t h = policy_hash(name, len);; h++) {
		uint32_t s = p->layer_slots[h & p->layer_mask];
		if (!s)
			return NULL;
		const struct policy_layer *l = &p->layers[s - 1];
		if (strcmp(l->spec.name, name) == 0)
			return l;
	}
}

const struct layer_spec *policy_layer_spec(const struct policy *p, const char *layer_name)
{
	const struct policy_layer *l = policy_layer(p, layer_name);
	return l ? &l->spec : NULL;
}

const struct layer_spec *policy_layer_spec_at(const struct policy *p, size_t i)
{
	const struct policy_layer *l = policy_layer_at(p, i);
	return l ? &l->spec : NULL;
}

static int provider_cmp(const void *a, const void *b)
{
	return strcmp(((const struct policy_provider *)a)->method,
		      ((const struct policy_provider *)b)->method);
}

const struct policy_layer *policy_method_provider(const struct policy *p, const char *method)
{
	if (!p || !method || !p->nproviders)
		return NULL;
	struct policy_provider key = {.method = method};
	const struct policy_provider *f =
		bsearch(&key, p->providers, p->nproviders, sizeof(key), provider_cmp);
	return f ? f->layer : NULL;
}

bool policy_may_publish(const struct policy_layer *l, const char *event)
{
	for (size_t i = 0; l && event && i < l->npublishes; i++)
		if (strcmp(l->publishes[i], event) == 0)
			return true;
	return false;
}

const struct policy_subscription *policy_subscription_find(const struct policy_layer *l,
							   const char *event,
							   const struct cdt_arg *args, size_t nargs)
{
	for (size_t i = 0; l && event && i < l->nsubscriptions; i++) {
		const struct policy_subscription *s = &l->subscriptions[i];
		if (strcmp(s->event, event) == 0 &&
		    policy_cons_match(s->cons, s->ncons, args, nargs))
			return s;
	}
	return NULL;
}

const struct policy_resource *policy_resource_find(const struct policy_layer *l,
						   enum policy_res_kind kind, const char *name)
{
	for (size_t i = 0; l && name && i < l->nresources; i++)
		if (l->resources[i].kind == kind && strcmp(l->resources[i].name, name) == 0)
			return &l->resources[i];
	return NULL;
}

size_t policy_expect_count(const struct policy *p)
{
	return p ? p->nexpects : 0;
}

const struct policy_expect *policy_expect_at(const struct policy *p, size_t i)
{
	return p && i < p->nexpects ? &p->expects[i] : NULL;
}

size_t policy_rule_count(const struct policy *p)
{
	return p ? p->nrules : 0;
}

/* ---- Broker methods ---- */

static const struct policy_builtin builtins[] = {
	{"conduit.connect", "connect the layer's `connect NAME` resource; argument name"},
	{"conduit.listen",
	 "a listening socket for the layer's `listen NAME` resource; argument name"},
	{"conduit.open", "open the layer's `open PATH MODE` resource; argument path"},
	{"conduit.ping", "liveness check answered by the broker"},
};

const struct policy_builtin *policy_builtins(size_t *ret_n)
{
	*ret_n = sizeof(builtins) / sizeof(builtins[0]);
	return builtins;
}

const struct policy_builtin *policy_builtin_find(const char *method)
{
	for (size_t i = 0; method && i < sizeof(builtins) / sizeof(builtins[0]); i++)
		if (strcmp(builtins[i].method, method) == 0)
			return &builtins[i];
	return NULL;
}
