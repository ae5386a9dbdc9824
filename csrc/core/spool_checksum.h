/*
 * spool_checksum.h: CRC-32C (Castagnoli), the per-entry checksum.
 * Hardware instructions where the CPU has them, slicing-by-8 otherwise.
 */
#ifndef SPOOL_CHECKSUM_H
#define SPOOL_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC-32C over buf; start with crc = 0. */
uint32_t spool_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
