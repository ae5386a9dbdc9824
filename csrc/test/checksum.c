/*
 * checksum.c: every CRC-32C implementation computes the same values: the
 * standard check value, a bit-at-a-time reference at every length up to
 * past two long blocks of the three-stream code and at every alignment,
 * and a sum continued across pieces equal to the sum of the whole (the
 * stored format depends on it: a change of implementation must not
 * change one stored checksum).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool_checksum.h"
#include "tap.h"

/* Bit at a time, from the polynomial: the reference. */
static uint32_t reference(uint32_t crc, const uint8_t *p, size_t len)
{
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
    }
    return ~crc;
}

static const char *const names[] = {"slicing-by-8", "crc32 instruction", "crc32 instruction, three streams"};

int main(void)
{
    enum { MAX = 3 * 8192 * 2 + 3 * 256 + 64 };
    uint8_t *buf = malloc(MAX + 16);
    if (buf == NULL)
        return 2;
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < MAX + 16; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
    ok(spool_crc32c(0, "123456789", 9) == 0xE3069283u, "spool_crc32c(\"123456789\") is the standard check value");
    ok(spool_crc32c(0, "", 0) == 0, "the sum of nothing is 0");
    for (int v = SPOOL_CRC_SW; v <= SPOOL_CRC_HW3; v++) {
        if (!spool_crc32c_has(v)) {
            printf("ok %d - # SKIP %s: not on this CPU\n", ++tap_n, names[v]);
            continue;
        }
        size_t bad_len = 0, bad_split = 0;
        int bad = 0, bad_parts = 0;
        /* Every length to 1024, then strides to past two long blocks,
         * each at an odd alignment too. */
        for (size_t len = 0; len <= MAX && !bad; len += len < 1024 ? 1 : 61) {
            for (size_t off = 0; off < 16; off += 7) {
                if (spool_crc32c_variant(v, 0, buf + off, len) != reference(0, buf + off, len)) {
                    bad = 1;
                    bad_len = len;
                }
            }
        }
        ok(!bad, "%s agrees with the reference at every length and alignment", names[v]);
        if (bad)
            printf("#   first difference at %zu bytes\n", bad_len);
        for (size_t split = 0; split <= MAX && !bad_parts; split += 997) {
            uint32_t a = spool_crc32c_variant(v, 0, buf, split);
            if (spool_crc32c_variant(v, a, buf + split, MAX - split) != reference(0, buf, MAX)) {
                bad_parts = 1;
                bad_split = split;
            }
        }
        ok(!bad_parts, "%s continued across two pieces sums the whole", names[v]);
        if (bad_parts)
            printf("#   first difference with the split at %zu bytes\n", bad_split);
    }
    ok(spool_crc32c(0, buf, MAX) == reference(0, buf, MAX), "spool_crc32c agrees with the reference");
    free(buf);
    return tap_done();
}
