/* SPDX-License-Identifier: MIT */
/* The documented error set: names for -errno and -CDT_E_* values. */
#include <string.h>

#include "conduit/conduit.h"

static const char *const cdt_error_names[CDT_E_MAX - CDT_E_BASE] = {
	[CDT_E_TOO_BIG - CDT_E_BASE] = "length over its hard limit",
	[CDT_E_TRUNCATED - CDT_E_BASE] = "input truncated",
	[CDT_E_TRAILING - CDT_E_BASE] = "trailing bytes",
	[CDT_E_KIND - CDT_E_BASE] = "unknown message kind or frame type",
	[CDT_E_NAME - CDT_E_BASE] = "ill-formed name",
	[CDT_E_DUPLICATE - CDT_E_BASE] = "duplicate or unordered argument name",
	[CDT_E_TYPE - CDT_E_BASE] = "unknown argument type",
	[CDT_E_UTF8 - CDT_E_BASE] = "invalid UTF-8 or NUL in string",
	[CDT_E_VALUE - CDT_E_BASE] = "non-canonical value",
	[CDT_E_LIMIT - CDT_E_BASE] = "too many arguments or fds",
	[CDT_E_FD - CDT_E_BASE] = "passed fds do not match the message",
	[CDT_E_AUTH - CDT_E_BASE] = "authentication failed",
	[CDT_E_PROTO - CDT_E_BASE] = "protocol violation",
	[CDT_E_VERSION - CDT_E_BASE] = "unsupported version",
	[CDT_E_EOF - CDT_E_BASE] = "peer closed without FIN",
	[CDT_E_CLOSED - CDT_E_BASE] = "channel closed",
};

bool cdt_err_is_peer(int err)
{
	return err < -CDT_E_BASE && err > -CDT_E_MAX;
}

const char *cdt_strerror(int err)
{
	if (cdt_err_is_peer(err)) {
		const char *s = cdt_error_names[-err - CDT_E_BASE];
		return s ? s : "unknown conduit error";
	}
	if (err < 0 && err > -CDT_E_BASE)
		return strerror(-err);
	return err == 0 ? "success" : "unknown error";
}
