/* SPDX-License-Identifier: MIT */
/*
 * Strict UTF-8 validation for strings on the wire: shortest form only (no
 * overlongs), no UTF-16 surrogates (U+D800..U+DFFF), nothing above
 * U+10FFFF, no truncated sequence, no lone continuation byte and no NUL,
 * so a string has exactly one encoding and C string functions see all of it.
 */
#ifndef CONDUIT_UTF8_H
#define CONDUIT_UTF8_H

#include <stddef.h>

/* 0 when p[0..len) is valid, else -CDT_E_UTF8.  p may be NULL when len is 0. */
int utf8_check(const void *p, size_t len);

#endif
