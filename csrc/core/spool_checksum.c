/*
 * spool_checksum.c: CRC-32C.  CRC-32C detects every burst error of up to
 * 32 bits and all 1-3 bit errors in entries up to a few MiB; the x86
 * crc32 instruction computes it at several GB/s, three streams at once
 * at about three times that.
 */
#include "spool_checksum.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82f63b78u /* reflected Castagnoli polynomial */

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static int have_hw;

static void table_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int k = 1; k < 8; k++)
            table[k][n] = (table[k - 1][n] >> 8) ^ table[0][table[k - 1][n] & 0xff];
#if defined(__x86_64__)
    __builtin_cpu_init();
    have_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t len)
{
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        v ^= crc;
        crc = table[7][v & 0xff] ^ table[6][(v >> 8) & 0xff] ^ table[5][(v >> 16) & 0xff] ^
              table[4][(v >> 24) & 0xff] ^ table[3][(v >> 32) & 0xff] ^ table[2][(v >> 40) & 0xff] ^
              table[1][(v >> 48) & 0xff] ^ table[0][v >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}

/* Three streams.  The crc32 instruction takes 3 cycles and can start one
 * every cycle, so one dependent chain uses a third of it.  A block of
 * 3 x n bytes is summed as three independent chains (the first continues
 * crc, the other two start from 0), which are then joined: by linearity,
 * the register after A B equals shift_|B|(register after A) ^ (B's from
 * 0), where shift_n, the register's change over n zero bytes, is linear
 * in its 32 bits and so is four table lookups (tables made once, from
 * the instruction itself run over zeros). */
#define LONG_BLOCK 8192
#define SHORT_BLOCK 256
static uint32_t shift_long[4][256], shift_short[4][256];

__attribute__((target("sse4.2"))) static void shift_table(uint32_t tab[4][256], size_t n)
{
    static const uint8_t zeros[LONG_BLOCK];
    uint32_t basis[32];
    for (int b = 0; b < 32; b++)
        basis[b] = crc_hw(1u << b, zeros, n);
    for (int k = 0; k < 4; k++)
        for (uint32_t v = 0; v < 256; v++) {
            uint32_t x = 0;
            for (int i = 0; i < 8; i++)
                if (v >> i & 1)
                    x ^= basis[8 * k + i];
            tab[k][v] = x;
        }
}

static uint32_t shift(const uint32_t tab[4][256], uint32_t crc)
{
    return tab[0][crc & 0xff] ^ tab[1][(crc >> 8) & 0xff] ^ tab[2][(crc >> 16) & 0xff] ^ tab[3][crc >> 24];
}

/* Blocks of 3 x n bytes (n a multiple of 8) while there are any. */
__attribute__((target("sse4.2"))) static uint32_t crc_hw3_blocks(uint32_t crc, const uint8_t **pp, size_t *lenp,
                                                                  size_t n, const uint32_t tab[4][256])
{
    const uint8_t *p = *pp;
    size_t len = *lenp;
    while (len >= 3 * n) {
        uint64_t c0 = crc, c1 = 0, c2 = 0;
        for (size_t i = 0; i < n; i += 8) {
            uint64_t v0, v1, v2;
            memcpy(&v0, p + i, 8);
            memcpy(&v1, p + n + i, 8);
            memcpy(&v2, p + 2 * n + i, 8);
            c0 = __builtin_ia32_crc32di(c0, v0);
            c1 = __builtin_ia32_crc32di(c1, v1);
            c2 = __builtin_ia32_crc32di(c2, v2);
        }
        crc = shift(tab, shift(tab, (uint32_t)c0) ^ (uint32_t)c1) ^ (uint32_t)c2;
        p += 3 * n;
        len -= 3 * n;
    }
    *pp = p;
    *lenp = len;
    return crc;
}

static uint32_t crc_hw3(uint32_t crc, const uint8_t *p, size_t len)
{
    crc = crc_hw3_blocks(crc, &p, &len, LONG_BLOCK, (const uint32_t(*)[256])shift_long);
    crc = crc_hw3_blocks(crc, &p, &len, SHORT_BLOCK, (const uint32_t(*)[256])shift_short);
    return crc_hw(crc, p, len);
}
#endif

static void init(void)
{
    table_init();
#if defined(__x86_64__)
    if (have_hw) {
        shift_table(shift_long, LONG_BLOCK);
        shift_table(shift_short, SHORT_BLOCK);
    }
#endif
}

uint32_t spool_crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&table_once, init);
    crc = ~crc;
#if defined(__x86_64__)
    if (have_hw)
        return ~crc_hw3(crc, buf, len);
#endif
    return ~crc_sw(crc, buf, len);
}

uint32_t spool_crc32c_variant(int variant, uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&table_once, init);
    crc = ~crc;
#if defined(__x86_64__)
    if (have_hw && variant == SPOOL_CRC_HW3)
        return ~crc_hw3(crc, buf, len);
    if (have_hw && variant == SPOOL_CRC_HW1)
        return ~crc_hw(crc, buf, len);
#endif
    if (variant == SPOOL_CRC_SW)
        return ~crc_sw(crc, buf, len);
    return 0; /* not on this CPU: callers ask spool_crc32c_has first */
}

int spool_crc32c_has(int variant)
{
    pthread_once(&table_once, init);
    return variant == SPOOL_CRC_SW || (have_hw && (variant == SPOOL_CRC_HW1 || variant == SPOOL_CRC_HW3));
}
