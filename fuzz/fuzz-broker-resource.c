/* SPDX-License-Identifier: MIT */
/*
 * The spelling checks behind the broker's privileged services: the path
 * check of res_open() and the endpoint checks of connect/listen.  Their
 * input comes from the policy file, so a policy author's typo (or a hostile
 * policy) must never be accepted as something the checks promise to reject.
 * Every accepted input is re-verified here by an independent oracle.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "resource.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX (RES_PATH_MAX + 16)

/* Accepted paths are relative, short enough, and no component is empty,
 * "." or "..". */
static void oracle_path(const char *s)
{
	size_t len = strlen(s), start = 0;

	if (len == 0 || len > RES_PATH_MAX || s[0] == '/' || s[len - 1] == '/')
		abort();
	for (size_t i = 0; i <= len; i++) {
		if (s[i] != '/' && s[i] != '\0')
			continue;
		size_t n = i - start;

		if (n == 0 || (n == 1 && s[start] == '.') ||
		    (n == 2 && s[start] == '.' && s[start + 1] == '.'))
			abort();
		start = i + 1;
	}
}

/* Accepted endpoints end in ":" and a canonical decimal port; only listen
 * may use port 0; anything connect accepts, listen accepts too. */
static void oracle_tcp(const char *s, int listen)
{
	const char *colon = strrchr(s, ':');
	unsigned long port;
	char *end;

	if (!colon || colon == s || !colon[1] || strlen(colon + 1) > 5)
		abort();
	if (colon[1] == '0' && colon[2] != '\0')
		abort();
	for (const char *p = colon + 1; *p; p++)
		if (*p < '0' || *p > '9')
			abort();
	port = strtoul(colon + 1, &end, 10);
	if (*end || port > 65535 || (port == 0 && !listen))
		abort();
	if (s[0] == '[' ? colon[-1] != ']' : strchr(s, '[') || strchr(s, ']'))
		abort();
	if (!listen && res_tcp_check(s, 1) != 0)
		abort();
}

static void oracle_unix(const char *s)
{
	if (s[0] != '/' || strlen(s) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size > INPUT_MAX)
		return 0;
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0'; /* an embedded NUL simply ends the string early */
	if (res_path_check(s) == 0)
		oracle_path(s);
	if (res_tcp_check(s, 0) == 0)
		oracle_tcp(s, 0);
	if (res_tcp_check(s, 1) == 0)
		oracle_tcp(s, 1);
	if (res_unix_check(s) == 0)
		oracle_unix(s);
	free(s);
	return 0;
}
