/*
 * Framing: how packets travel over a byte stream that may drop, corrupt or duplicate bytes.
 *
 *   0x7E | esc(length u16 LE) | esc(payload[length]) | esc(crc16 u16 LE)
 *
 * The CRC (see crc16.h) covers the two length bytes and the payload, before escaping. Inside the
 * escaped region 0x7E and 0x7D never appear raw: each is sent as 0x7D followed by the byte XOR 0x20.
 * A raw 0x7E therefore always starts a frame, so a receiver resynchronises on the next frame after any
 * loss. See docs/wire-protocol.md.
 */
#ifndef TVMRT_FRAME_H_
#define TVMRT_FRAME_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TVMRT_FRAME_START 0x7Eu
#define TVMRT_FRAME_ESCAPE 0x7Du
#define TVMRT_FRAME_ESCAPE_XOR 0x20u

/* Bytes the encoder stages before calling its write function (one write per flush). */
#ifndef TVMRT_FRAME_STAGE_SIZE
#define TVMRT_FRAME_STAGE_SIZE 64
#endif

/* What one byte pushed into the decoder produced. The error codes travel in NACK packets. */
typedef enum {
  TVMRT_FRAME_NONE = 0,       /* nothing complete yet */
  TVMRT_FRAME_OK = 1,         /* a frame with a good CRC: payload in buffer[0..length) */
  TVMRT_FRAME_BAD_CRC = 2,    /* a complete frame whose CRC did not match: dropped */
  TVMRT_FRAME_TOO_LONG = 3,   /* its length exceeds the receive buffer: dropped until the next start */
  TVMRT_FRAME_TRUNCATED = 4,  /* a start marker arrived inside a frame: the partial one is dropped */
  TVMRT_FRAME_BAD_ESCAPE = 5  /* an escape byte followed by a byte that cannot be escaped */
} tvmrt_frame_event_t;

typedef struct {
  uint8_t* buffer;     /* caller-owned payload buffer */
  size_t capacity;     /* its size: longer frames are rejected */
  size_t received;     /* payload bytes stored so far */
  uint16_t length;     /* payload length of the frame being received (valid after the header) */
  uint16_t crc;        /* running CRC over length + payload */
  uint16_t crc_wire;   /* CRC bytes as received */
  uint8_t state;       /* internal: hunting / header / payload / crc */
  uint8_t field_bytes; /* bytes of the current header/crc field received */
  uint8_t escaped;     /* the previous byte was the escape byte */
} tvmrt_frame_decoder_t;

void tvmrt_frame_decoder_init(tvmrt_frame_decoder_t* dec, uint8_t* buffer, size_t capacity);

/* Push one received byte. On TVMRT_FRAME_OK the payload is buffer[0..dec->length). */
tvmrt_frame_event_t tvmrt_frame_decoder_push(tvmrt_frame_decoder_t* dec, uint8_t byte);

/* Sink for encoded bytes; `ctx` is the encoder's context pointer. */
typedef void (*tvmrt_write_fn)(void* ctx, const uint8_t* data, size_t len);

typedef struct {
  tvmrt_write_fn write;
  void* ctx;
  size_t staged;
  uint16_t crc;
  uint8_t stage[TVMRT_FRAME_STAGE_SIZE];
} tvmrt_frame_encoder_t;

void tvmrt_frame_encoder_init(tvmrt_frame_encoder_t* enc, tvmrt_write_fn write, void* ctx);

/* Start a frame whose payload will be exactly `length` bytes, given by one or more put() calls. */
void tvmrt_frame_begin(tvmrt_frame_encoder_t* enc, uint16_t length);
void tvmrt_frame_put(tvmrt_frame_encoder_t* enc, const uint8_t* data, size_t len);
/* Emit the CRC and flush everything staged. */
void tvmrt_frame_end(tvmrt_frame_encoder_t* enc);

/* One-shot: begin + put + end. */
void tvmrt_frame_write(tvmrt_frame_encoder_t* enc, const uint8_t* payload, uint16_t length);

#ifdef __cplusplus
}
#endif

#endif /* TVMRT_FRAME_H_ */
