/* SPDX-License-Identifier: MIT */
/* The Modbus TCP client side of the io layer, free of I/O: it builds the
 * requests the layer sends and checks each answer strictly against the
 * request it answers.  The PLC (or anything that took its address) is
 * untrusted: every byte of a response is checked before a value is used,
 * and a response that is not exactly the answer to our request is refused
 * whole.
 *
 * Only the function codes the plant needs: read coils (1), read discrete
 * inputs (2), read holding registers (3), read input registers (4), write
 * single coil (5) and write single register (6). */
#ifndef PLANT_MBCLIENT_H
#define PLANT_MBCLIENT_H

#include <stddef.h>
#include <stdint.h>

#define MBC_MBAP_LEN 7				  /* transaction, protocol, length, unit */
#define MBC_PDU_MAX  253			  /* Modbus application protocol spec, 4.1 */
#define MBC_ADU_MAX  (MBC_MBAP_LEN + MBC_PDU_MAX) /* 260 */
#define MBC_REQ_LEN  12				  /* every request here: MBAP + fc + 2 x u16 */
#define MBC_BITS_MAX 2000			  /* FC 1, 2: quantity 1..2000 */
#define MBC_REGS_MAX 125			  /* FC 3, 4: quantity 1..125 */

#define MBC_FC_READ_COILS	     1
#define MBC_FC_READ_DISCRETE	     2
#define MBC_FC_READ_HOLDING	     3
#define MBC_FC_READ_INPUT	     4
#define MBC_FC_WRITE_SINGLE_COIL     5
#define MBC_FC_WRITE_SINGLE_REGISTER 6

/* One request, as the layer keeps it to check the answer against. */
struct mbc_request {
	uint16_t tid;	/* transaction id */
	uint8_t unit;	/* unit id */
	uint8_t fc;	/* function code, 1..6 */
	uint16_t addr;	/* first address (protocol, 0-based) */
	uint16_t count; /* reads: quantity; writes: 1 */
	uint16_t value; /* writes: FC 5 0xFF00 or 0x0000, FC 6 the register */
};

/* Fill @req for a read (FC 1..4) of @count addresses from @addr: 0, or
 * -EINVAL for another function code, a count of 0 or over the function's
 * maximum, or a range past address 65535. */
int mbc_read_request(struct mbc_request *req, uint16_t tid, uint8_t unit, uint8_t fc, uint16_t addr,
		     uint16_t count);

/* Fill @req for a single write: FC 5 with @value 0 or 1 (sent as 0x0000 or
 * 0xFF00), FC 6 with any register value.  -EINVAL for another function code
 * or a coil value other than 0 and 1. */
int mbc_write_request(struct mbc_request *req, uint16_t tid, uint8_t unit, uint8_t fc,
		      uint16_t addr, uint16_t value);

/* Encode @req into @buf (MBC_REQ_LEN bytes). */
void mbc_encode(const struct mbc_request *req, uint8_t buf[MBC_REQ_LEN]);

/* How long the ADU starting at @buf is, from its MBAP header:
 *   0 and *ret_len   the whole ADU is that many bytes (7 + length - 1)
 *   -EAGAIN          fewer than MBC_MBAP_LEN bytes yet
 *   -EBADMSG         protocol id not 0, or a length field outside 2..254
 *                    (a PDU of 1..253 bytes plus the unit id)
 * Only the header is read; @len may be less than the ADU. */
int mbc_frame_len(const uint8_t *buf, size_t len, size_t *ret_len);

/* Check the ADU @adu of exactly @len bytes against @req:
 *   0         the normal answer; reads write @count values into @ret_values
 *             (bits as 0/1, registers as they are), room for @req->count;
 *             writes write the echoed value (FC 5: 0 or 1) into ret_values[0]
 *   1..255    a Modbus exception with that code (nothing written)
 *   -EBADMSG  anything else: another transaction, protocol or unit id, a
 *             length that disagrees with the frame or the request, another
 *             function, a byte count that is not exactly what the quantity
 *             needs, set padding bits, a write echo that differs from the
 *             request, exception code 0.
 * @ret_values is written only on 0. */
int mbc_parse_response(const struct mbc_request *req, const uint8_t *adu, size_t len,
		       uint16_t *ret_values);

#endif
