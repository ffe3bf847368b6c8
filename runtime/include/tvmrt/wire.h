/* Explicit little-endian reads and writes: the wire byte order never depends on the CPU's. */
#ifndef TVMRT_WIRE_H_
#define TVMRT_WIRE_H_

#include <stdint.h>

static inline void tvmrt_put_u16(uint8_t* p, uint16_t v) {
  p[0] = (uint8_t)(v & 0xFFu);
  p[1] = (uint8_t)(v >> 8);
}

static inline void tvmrt_put_u32(uint8_t* p, uint32_t v) {
  p[0] = (uint8_t)(v & 0xFFu);
  p[1] = (uint8_t)((v >> 8) & 0xFFu);
  p[2] = (uint8_t)((v >> 16) & 0xFFu);
  p[3] = (uint8_t)(v >> 24);
}

static inline void tvmrt_put_u64(uint8_t* p, uint64_t v) {
  tvmrt_put_u32(p, (uint32_t)(v & 0xFFFFFFFFu));
  tvmrt_put_u32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t tvmrt_get_u16(const uint8_t* p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static inline uint32_t tvmrt_get_u32(const uint8_t* p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

#endif /* TVMRT_WIRE_H_ */
