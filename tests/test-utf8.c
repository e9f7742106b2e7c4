/* SPDX-License-Identifier: MIT */
/* Strict UTF-8: every failure class rejected, every boundary accepted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conduit/conduit.h"
#include "utf8.h"

#define OK(s)  assert_int_equal(utf8_check(s, sizeof(s) - 1), 0)
#define BAD(s) assert_int_equal(utf8_check(s, sizeof(s) - 1), -CDT_E_UTF8)

static void test_valid(void **state)
{
	(void)state;
	assert_int_equal(utf8_check(NULL, 0), 0);
	OK("");
	OK("tank1.level");
	OK("\x01\x7f");
	OK("\xc2\x80");		/* U+0080, smallest 2-byte */
	OK("\xdf\xbf");		/* U+07FF */
	OK("\xe0\xa0\x80");	/* U+0800, smallest 3-byte */
	OK("\xed\x9f\xbf");	/* U+D7FF, just below the surrogates */
	OK("\xee\x80\x80");	/* U+E000, just above them */
	OK("\xef\xbf\xbf");	/* U+FFFF */
	OK("\xf0\x90\x80\x80"); /* U+10000, smallest 4-byte */
	OK("\xf4\x8f\xbf\xbf"); /* U+10FFFF, the last code point */
	OK("\xc2\xb0"
	   "C \xe2\x84\x83 \xf0\x9f\x8c\xa1");
}

static void test_overlong(void **state)
{
	(void)state;
	BAD("\xc0\xaf");	 /* '/' in 2 bytes */
	BAD("\xc1\xbf");	 /* U+007F in 2 bytes */
	BAD("\xc0\x80");	 /* NUL in 2 bytes */
	BAD("\xe0\x80\xaf");	 /* '/' in 3 bytes */
	BAD("\xe0\x9f\xbf");	 /* U+07FF in 3 bytes */
	BAD("\xf0\x80\x80\xaf"); /* '/' in 4 bytes */
	BAD("\xf0\x8f\xbf\xbf"); /* U+FFFF in 4 bytes */
}

static void test_surrogates(void **state)
{
	(void)state;
	BAD("\xed\xa0\x80");		 /* U+D800 */
	BAD("\xed\xaf\xbf");		 /* U+DBFF */
	BAD("\xed\xb0\x80");		 /* U+DC00 */
	BAD("\xed\xbf\xbf");		 /* U+DFFF */
	BAD("\xed\xa0\xbd\xed\xb2\xa9"); /* a UTF-16 pair spelled as CESU-8 */
}

static void test_too_big(void **state)
{
	(void)state;
	BAD("\xf4\x90\x80\x80"); /* U+110000 */
	BAD("\xf5\x80\x80\x80");
	BAD("\xf7\xbf\xbf\xbf");
	BAD("\xf8\x88\x80\x80\x80"); /* 5-byte form */
	BAD("\xfc\x84\x80\x80\x80\x80");
	BAD("\xfe");
	BAD("\xff");
}

static void test_continuation(void **state)
{
	(void)state;
	BAD("\x80");
	BAD("\xbf");
	BAD("a\x80"
	    "b");
	BAD("\xc2\x80\x80"); /* one continuation too many */
	BAD("\xe2\x28\xa1"); /* second byte not a continuation */
	BAD("\xe2\x82\x28"); /* third byte not a continuation */
	BAD("\xf0\x90\x28\xbc");
	BAD("\xf0\x90\x80\x28");
}

static void test_truncated(void **state)
{
	(void)state;
	BAD("\xc2");
	BAD("\xe2\x82");
	BAD("\xe2");
	BAD("\xf0\x9f\x8c");
	BAD("\xf0\x9f");
	BAD("\xf0");
	BAD("ab\xe2\x82");
	/* A valid sequence cut by the length, not by the bytes. */
	assert_int_equal(utf8_check("\xe2\x84\x83", 2), -CDT_E_UTF8);
}

static void test_nul(void **state)
{
	(void)state;
	BAD("\0");
	BAD("a\0b");
	BAD("abc\0");
}

/* Long ASCII runs are checked eight bytes at a time: a NUL, a high byte or
 * a bad sequence at every position of a 40-byte string, and every length
 * around the word size, are found exactly as byte by byte. */
static void test_words(void **state)
{
	(void)state;
	char s[41];
	for (size_t len = 0; len <= 40; len++) {
		memset(s, 'a', sizeof(s));
		assert_int_equal(utf8_check(s, len), 0);
		for (size_t pos = 0; pos < len; pos++) {
			memset(s, 'a', sizeof(s));
			s[pos] = '\0';
			assert_int_equal(utf8_check(s, len), -CDT_E_UTF8);
			s[pos] = (char)0x80; /* lone continuation */
			assert_int_equal(utf8_check(s, len), -CDT_E_UTF8);
			s[pos] = (char)0xff;
			assert_int_equal(utf8_check(s, len), -CDT_E_UTF8);
			s[pos] = 0x7f;
			assert_int_equal(utf8_check(s, len), 0);
			if (pos + 1 < len) {
				/* U+00E9, then back to ASCII words. */
				s[pos] = (char)0xc3;
				s[pos + 1] = (char)0xa9;
				assert_int_equal(utf8_check(s, len), 0);
				/* Cut short by the end of the string. */
				assert_int_equal(utf8_check(s, pos + 1), -CDT_E_UTF8);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),	     cmocka_unit_test(test_overlong),
		cmocka_unit_test(test_surrogates),   cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_continuation), cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_nul),	     cmocka_unit_test(test_words),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
