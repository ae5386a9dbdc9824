/*
 * spool_checksum.h: CRC-32C (Castagnoli), the per-entry checksum.
 * Hardware instructions where the CPU has them (three streams at once),
 * slicing-by-8 otherwise.
 */
#ifndef SPOOL_CHECKSUM_H
#define SPOOL_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC-32C over buf; start with crc = 0. */
uint32_t spool_crc32c(uint32_t crc, const void *buf, size_t len);

/* The implementations, for tests and benchmarks: each computes the same
 * values.  SPOOL_CRC_HW3 (three interleaved streams, spool_crc32c's
 * choice) and SPOOL_CRC_HW1 need SSE4.2; spool_crc32c_has says whether
 * this CPU has one (answers 1 or 0), and spool_crc32c_variant computes
 * with it (with one this CPU lacks, an unspecified value). */
enum { SPOOL_CRC_SW, SPOOL_CRC_HW1, SPOOL_CRC_HW3 };
int spool_crc32c_has(int variant);
uint32_t spool_crc32c_variant(int variant, uint32_t crc, const void *buf, size_t len);

#endif
