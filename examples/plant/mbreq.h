/* SPDX-License-Identifier: MIT */
/* Checks a Modbus TCP request before plcsim hands it to libmodbus'
 * modbus_reply(), whose request handling has had memory-safety bugs
 * (CVE-2022-0367, CVE-2024-10918 and later reports).  Only the function
 * codes the plant needs pass; every length, count and address is checked
 * against the frame and the register map here, so modbus_reply() only sees
 * requests it has always handled correctly. */
#ifndef PLANT_MBREQ_H
#define PLANT_MBREQ_H

#include <stddef.h>
#include <stdint.h>

#include "tags.h"

#define MBREQ_TCP_HEADER 7 /* MBAP: transaction, protocol, length, unit */

/* Modbus exception codes plcsim answers with. */
#define MBREQ_EX_ILLEGAL_FUNCTION 1
#define MBREQ_EX_ILLEGAL_ADDRESS  2
#define MBREQ_EX_ILLEGAL_VALUE	  3

/* Check the TCP ADU @req of @len bytes (as modbus_receive() returned it)
 * against a map with @area_size[area] addresses per area:
 *   0         pass it to modbus_reply()
 *   1..3      answer with that exception (modbus_reply_exception())
 *   -EBADMSG  the frame contradicts itself: drop the connection */
int mbreq_check(const uint8_t *req, size_t len, const uint16_t area_size[TAG_AREA_COUNT]);

#endif
