/* SPDX-License-Identifier: MIT */
/* The pre-rework audit serializer (audit-format-ref.c), for comparison. */
#ifndef CONDUIT_AUDIT_FORMAT_REF_H
#define CONDUIT_AUDIT_FORMAT_REF_H

#include "audit-internal.h"

int ref_audit_arg_from_cdt(const struct cdt_arg *in, size_t *budget, struct audit_arg *ret_out);
const char *ref_record_check(const struct audit_record *rec);
long ref_audit_format(const struct audit_record *rec, char *buf, size_t cap);

#endif
