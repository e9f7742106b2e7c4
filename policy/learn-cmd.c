/* SPDX-License-Identifier: MIT */
/*
 * `conduit-policy learn LOG... [--base POLICY]`: run the learner and print
 * its proposal as a policy fragment, as JSON, or as a unified diff that
 * inserts the rules the base policy lacks.  Prints only: it writes no file.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "learn.h"

/* The closing "}" line (1-based) of the layer opened at line open. */
static size_t layer_end(const char *src, size_t len, unsigned open)
{
	size_t line = 1;
	for (size_t i = 0; i < len; line++) {
		size_t j = i;
		while (j < len && src[j] != '\n')
			j++;
		size_t k = i;
		while (k < j && (src[k] == ' ' || src[k] == '\t'))
			k++;
		if (line > open && k < j && src[k] == '}')
			return line;
		i = j + 1;
	}
	return 0;
}

static const char *line_at(const char *src, size_t len, size_t n, size_t *ret_len)
{
	size_t i = 0;
	for (size_t line = 1; line < n && i < len; i++)
		if (src[i] == '\n')
			line++;
	size_t j = i;
	while (j < len && src[j] != '\n')
		j++;
	*ret_len = j - i;
	return src + i;
}

static size_t count_lines(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += s[i] == '\n';
	return n;
}

static void print_plus(const char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		const char *e = memchr(s + i, '\n', len - i);
		size_t n = (size_t)(e - (s + i));
		printf("+%.*s\n", (int)n, s + i);
		i += n + 1;
	}
}

/* A unified diff that only inserts: each layer's new rules go before its
 * closing brace, layers the base lacks go at the end. */
static int print_base_diff(const struct learner *l, const char *base_path, const char **layers,
			   size_t nlayers)
{
	size_t len;
	const char *src = policy_source(l->base, &len);
	size_t nlines = count_lines(src, len) + (len && src[len - 1] != '\n');
	long offset = 0;
	unsigned count = 0;
	printf("--- %s\n+++ %s (learned)\n", base_path, base_path);
	for (size_t i = 0; i < policy_layer_count(l->base); i++) {
		const struct policy_layer *bl = policy_layer_at(l->base, i);
		char *buf = NULL;
		size_t blen = 0;
		FILE *m = open_memstream(&buf, &blen);
		if (!m || learn_print_layer(m, l, bl->spec.name, false, true, "", &count) < 0) {
			if (m)
				fclose(m);
			free(buf);
			return -ENOMEM;
		}
		fclose(m);
		size_t k = count_lines(buf, blen), end = layer_end(src, len, bl->line);
		if (k && end) {
			size_t start = end > 2 ? end - 2 : 1, ctx = end - start + 1;
			printf("@@ -%zu,%zu +%ld,%zu @@\n", start, ctx, (long)start + offset,
			       ctx + k);
			for (size_t n = start; n < end; n++) {
				size_t ll;
				const char *t = line_at(src, len, n, &ll);
				printf(" %.*s\n", (int)ll, t);
			}
			print_plus(buf, blen);
			size_t ll;
			const char *t = line_at(src, len, end, &ll);
			printf(" %.*s\n", (int)ll, t);
			offset += (long)k;
		}
		free(buf);
	}
	for (size_t i = 0; i < nlayers; i++) {
		if (policy_layer(l->base, layers[i]))
			continue;
		char *buf = NULL;
		size_t blen = 0;
		FILE *m = open_memstream(&buf, &blen);
		if (!m)
			return -ENOMEM;
		fprintf(m,
			"layer %s {\n    # not in the base policy: exec, user and the sandbox "
			"are yours to write\n",
			layers[i]);
		if (learn_print_layer(m, l, layers[i], false, false, "", &count) < 0) {
			fclose(m);
			free(buf);
			return -ENOMEM;
		}
		fputs("}\n", m);
		fclose(m);
		size_t k = count_lines(buf, blen);
		printf("@@ -%zu,0 +%ld,%zu @@\n", nlines, (long)nlines + offset + 1, k);
		print_plus(buf, blen);
		offset += (long)k;
		free(buf);
	}
	return 0;
}

int cmd_learn(bool json, const char *base_path, const char *const *logs, size_t nlogs)
{
	struct policy *base = NULL;
	struct learner l = {0};
	const char **layers = NULL;
	size_t nlayers = 0;
	unsigned count = 0;
	int rc = EXIT_OK;
	if (base_path && (rc = cli_compile(base_path, &base)) != EXIT_OK)
		return rc;
	l.base = base;
	rc = EXIT_USAGE;
	struct audit_verify_result res;
	int r = learn_run(&l, logs, nlogs, &res);
	if (r < 0) {
		fprintf(stderr, "conduit-policy: learn: %s\n", strerror(-r));
		goto out;
	}
	if (res.status != AUDIT_OK && res.status != AUDIT_TORN) {
		fprintf(stderr,
			"conduit-policy: learn: %s:%" PRIu64 ": %s: %s; nothing learned from a log "
			"that does not verify\n",
			res.status == AUDIT_EMPTY ? logs[0] : logs[res.file], res.line,
			audit_status_name(res.status), res.reason);
		rc = EXIT_TAMPERED;
		goto out;
	}
	if (!(layers = calloc(l.nmethods + 1, sizeof(*layers))))
		goto out;
	for (size_t i = 0; i < l.nmethods; i++) {
		bool seen = false;
		for (size_t k = 0; k < nlayers && !seen; k++)
			seen = strcmp(layers[k], l.methods[i].layer) == 0;
		if (!seen)
			layers[nlayers++] = l.methods[i].layer;
	}
	uint64_t denied = 0;
	for (size_t i = 0; i < l.nmethods; i++)
		denied += l.methods[i].denied;
	if (json) {
		printf("{\"records\":%" PRIu64 ",\"learned_from\":%" PRIu64 ",\"denied\":%" PRIu64
		       ",\"rules\":[",
		       res.records, l.learned, denied);
		for (size_t i = 0; i < nlayers; i++)
			if (learn_print_layer(stdout, &l, layers[i], true, false, "", &count) < 0)
				goto out;
		printf("]}\n");
	} else if (base) {
		if (print_base_diff(&l, base_path, layers, nlayers) < 0)
			goto out;
	} else {
		printf("# conduit-policy learn: %" PRIu64 " records, %" PRIu64
		       " calls learned from, %" PRIu64 " denied calls not learned\n",
		       res.records, l.learned, denied);
		for (size_t i = 0; i < nlayers; i++) {
			printf("layer %s {\n", layers[i]);
			if (learn_print_layer(stdout, &l, layers[i], false, false, "", &count) < 0)
				goto out;
			printf("}\n");
		}
	}
	rc = EXIT_OK;
out:
	free(layers);
	learn_fini(&l);
	policy_free(base);
	return rc;
}
