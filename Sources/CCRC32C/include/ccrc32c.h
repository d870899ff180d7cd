#ifndef BALLOT_CCRC32C_H
#define BALLOT_CCRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/// Whether this CPU computes CRC-32C in hardware (x86-64's SSE 4.2 `crc32`
/// instruction, or ARMv8's CRC extension), so `ballot_crc32c_update` may be called.
bool ballot_crc32c_hardware_available(void);

/// Continue the raw (not inverted) CRC-32C register `crc` over `length`
/// bytes at `bytes`, in hardware. Only when `ballot_crc32c_hardware_available()`.
uint32_t ballot_crc32c_update(uint32_t crc, const uint8_t *bytes, size_t length);

#endif
