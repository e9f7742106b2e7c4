/* SPDX-License-Identifier: MIT */
/* Modbus TCP requests and strict response checks for the io layer
 * (mbclient.h says what is accepted). */
#include <errno.h>

#include "mbclient.h"

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static int is_bit_read(uint8_t fc)
{
	return fc == MBC_FC_READ_COILS || fc == MBC_FC_READ_DISCRETE;
}

static int is_reg_read(uint8_t fc)
{
	return fc == MBC_FC_READ_HOLDING || fc == MBC_FC_READ_INPUT;
}

int mbc_read_request(struct mbc_request *req, uint16_t tid, uint8_t unit, uint8_t fc, uint16_t addr,
		     uint16_t count)
{
	unsigned max;

	if (is_bit_read(fc))
		max = MBC_BITS_MAX;
	else if (is_reg_read(fc))
		max = MBC_REGS_MAX;
	else
		return -EINVAL;
	/* Widen before adding: the last address must still be 65535 or less. */
	if (count == 0 || count > max || (unsigned)addr + count - 1 > 0xFFFF)
		return -EINVAL;
	*req = (struct mbc_request){
		.tid = tid, .unit = unit, .fc = fc, .addr = addr, .count = count};
	return 0;
}

int mbc_write_request(struct mbc_request *req, uint16_t tid, uint8_t unit, uint8_t fc,
		      uint16_t addr, uint16_t value)
{
	if (fc == MBC_FC_WRITE_SINGLE_COIL) {
		if (value > 1)
			return -EINVAL;
		value = value ? 0xFF00 : 0x0000;
	} else if (fc != MBC_FC_WRITE_SINGLE_REGISTER) {
		return -EINVAL;
	}
	*req = (struct mbc_request){
		.tid = tid, .unit = unit, .fc = fc, .addr = addr, .count = 1, .value = value};
	return 0;
}

void mbc_encode(const struct mbc_request *req, uint8_t buf[MBC_REQ_LEN])
{
	put_be16(buf, req->tid);
	put_be16(buf + 2, 0);		    /* protocol: Modbus */
	put_be16(buf + 4, MBC_REQ_LEN - 6); /* unit + PDU */
	buf[6] = req->unit;
	buf[7] = req->fc;
	put_be16(buf + 8, req->addr);
	put_be16(buf + 10, is_bit_read(req->fc) || is_reg_read(req->fc) ? req->count : req->value);
}

int mbc_frame_len(const uint8_t *buf, size_t len, size_t *ret_len)
{
	uint16_t n;

	if (len < MBC_MBAP_LEN)
		return -EAGAIN;
	if (get_be16(buf + 2) != 0)
		return -EBADMSG;
	n = get_be16(buf + 4);
	/* The length counts the unit id and the PDU: at least unit + fc. */
	if (n < 2 || n > MBC_PDU_MAX + 1)
		return -EBADMSG;
	*ret_len = (size_t)MBC_MBAP_LEN - 1 + n;
	return 0;
}

/* The PDU of a normal read answer: fc, byte count, data. */
static int parse_read(const struct mbc_request *req, const uint8_t *pdu, size_t n,
		      uint16_t *ret_values)
{
	size_t need;

	if (n < 2)
		return -EBADMSG;
	need = is_bit_read(req->fc) ? ((size_t)req->count + 7) / 8 : (size_t)req->count * 2;
	/* The byte count must be what the quantity needs, and the frame must
	 * hold exactly that: no short data, no trailing bytes. */
	if (pdu[1] != need || n - 2 != need)
		return -EBADMSG;
	if (is_bit_read(req->fc)) {
		unsigned rest = req->count % 8;
		/* Padding bits of the last byte are zero (spec 6.1, 6.2). */
		if (rest && (pdu[1 + need] >> rest) != 0)
			return -EBADMSG;
		for (size_t i = 0; i < req->count; i++)
			ret_values[i] = (pdu[2 + i / 8] >> (i % 8)) & 1;
	} else {
		for (size_t i = 0; i < req->count; i++)
			ret_values[i] = get_be16(pdu + 2 + 2 * i);
	}
	return 0;
}

int mbc_parse_response(const struct mbc_request *req, const uint8_t *adu, size_t len,
		       uint16_t *ret_values)
{
	const uint8_t *pdu;
	size_t want, n;

	if (mbc_frame_len(adu, len, &want) < 0 || want != len)
		return -EBADMSG;
	if (get_be16(adu) != req->tid || adu[6] != req->unit)
		return -EBADMSG;
	pdu = adu + MBC_MBAP_LEN;
	n = len - MBC_MBAP_LEN; /* >= 1: the length field is at least 2 */
	if (pdu[0] == (req->fc | 0x80)) {
		/* An exception: fc | 0x80 and one code, nothing more. */
		if (n != 2 || pdu[1] == 0)
			return -EBADMSG;
		return pdu[1];
	}
	if (pdu[0] != req->fc)
		return -EBADMSG;
	if (is_bit_read(req->fc) || is_reg_read(req->fc))
		return parse_read(req, pdu, n, ret_values);
	/* Single writes echo the request exactly. */
	if (n != 5 || get_be16(pdu + 1) != req->addr || get_be16(pdu + 3) != req->value)
		return -EBADMSG;
	ret_values[0] = req->fc == MBC_FC_WRITE_SINGLE_COIL ? (req->value ? 1 : 0) : req->value;
	return 0;
}
