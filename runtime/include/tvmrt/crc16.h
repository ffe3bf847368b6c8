/*
 * CRC-16/CCITT-FALSE (also catalogued as CRC-16/IBM-3740): poly 0x1021, init 0xFFFF, no reflection,
 * no final xor. Check value: crc("123456789") == 0x29B1.
 */
#ifndef TVMRT_CRC16_H_
#define TVMRT_CRC16_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TVMRT_CRC16_INIT 0xFFFFu

/* Continue a CRC over `len` more bytes; start with TVMRT_CRC16_INIT. */
uint16_t tvmrt_crc16_update(uint16_t crc, const uint8_t* data, size_t len);

/* Convenience: the CRC of one buffer. */
uint16_t tvmrt_crc16(const uint8_t* data, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* TVMRT_CRC16_H_ */
