/* Frame encoder and decoder (layout in frame.h and docs/wire-protocol.md). */
#include "tvmrt/frame.h"

#include "tvmrt/crc16.h"

enum { kHunting = 0, kLength = 1, kPayload = 2, kCrc = 3 };

void tvmrt_frame_decoder_init(tvmrt_frame_decoder_t* dec, uint8_t* buffer, size_t capacity) {
  dec->buffer = buffer;
  dec->capacity = capacity;
  dec->received = 0;
  dec->length = 0;
  dec->crc = (uint16_t)TVMRT_CRC16_INIT;
  dec->crc_wire = 0;
  dec->state = kHunting;
  dec->field_bytes = 0;
  dec->escaped = 0;
}

static void start_frame(tvmrt_frame_decoder_t* dec) {
  dec->state = kLength;
  dec->received = 0;
  dec->length = 0;
  dec->crc = (uint16_t)TVMRT_CRC16_INIT;
  dec->crc_wire = 0;
  dec->field_bytes = 0;
  dec->escaped = 0;
}

tvmrt_frame_event_t tvmrt_frame_decoder_push(tvmrt_frame_decoder_t* dec, uint8_t byte) {
  if (byte == TVMRT_FRAME_START) {
    /* A raw start marker always begins a new frame; one in the middle of a frame means bytes were lost. */
    int interrupted = dec->state != kHunting && !(dec->state == kLength && dec->field_bytes == 0);
    start_frame(dec);
    return interrupted ? TVMRT_FRAME_TRUNCATED : TVMRT_FRAME_NONE;
  }
  if (dec->state == kHunting) {
    return TVMRT_FRAME_NONE;
  }
  if (dec->escaped) {
    dec->escaped = 0;
    byte = (uint8_t)(byte ^ TVMRT_FRAME_ESCAPE_XOR);
    if (byte != TVMRT_FRAME_START && byte != TVMRT_FRAME_ESCAPE) {
      dec->state = kHunting;
      return TVMRT_FRAME_BAD_ESCAPE;
    }
  } else if (byte == TVMRT_FRAME_ESCAPE) {
    dec->escaped = 1;
    return TVMRT_FRAME_NONE;
  }

  switch (dec->state) {
    case kLength:
      dec->crc = tvmrt_crc16_update(dec->crc, &byte, 1);
      dec->length = (uint16_t)(dec->length | ((uint16_t)byte << (8u * dec->field_bytes)));
      if (++dec->field_bytes == 2u) {
        dec->field_bytes = 0;
        if (dec->length > dec->capacity) {
          dec->state = kHunting;
          return TVMRT_FRAME_TOO_LONG;
        }
        dec->state = dec->length == 0u ? kCrc : kPayload;
      }
      return TVMRT_FRAME_NONE;
    case kPayload:
      dec->crc = tvmrt_crc16_update(dec->crc, &byte, 1);
      dec->buffer[dec->received++] = byte;
      if (dec->received == dec->length) {
        dec->state = kCrc;
      }
      return TVMRT_FRAME_NONE;
    default: /* kCrc */
      dec->crc_wire = (uint16_t)(dec->crc_wire | ((uint16_t)byte << (8u * dec->field_bytes)));
      if (++dec->field_bytes < 2u) {
        return TVMRT_FRAME_NONE;
      }
      dec->state = kHunting;
      return dec->crc_wire == dec->crc ? TVMRT_FRAME_OK : TVMRT_FRAME_BAD_CRC;
  }
}

void tvmrt_frame_encoder_init(tvmrt_frame_encoder_t* enc, tvmrt_write_fn write, void* ctx) {
  enc->write = write;
  enc->ctx = ctx;
  enc->staged = 0;
  enc->crc = (uint16_t)TVMRT_CRC16_INIT;
}

static void flush(tvmrt_frame_encoder_t* enc) {
  if (enc->staged > 0u) {
    enc->write(enc->ctx, enc->stage, enc->staged);
    enc->staged = 0;
  }
}

static void stage_raw(tvmrt_frame_encoder_t* enc, uint8_t byte) {
  if (enc->staged == sizeof(enc->stage)) {
    flush(enc);
  }
  enc->stage[enc->staged++] = byte;
}

static void stage_escaped(tvmrt_frame_encoder_t* enc, uint8_t byte) {
  if (byte == TVMRT_FRAME_START || byte == TVMRT_FRAME_ESCAPE) {
    stage_raw(enc, (uint8_t)TVMRT_FRAME_ESCAPE);
    byte = (uint8_t)(byte ^ TVMRT_FRAME_ESCAPE_XOR);
  }
  stage_raw(enc, byte);
}

void tvmrt_frame_begin(tvmrt_frame_encoder_t* enc, uint16_t length) {
  uint8_t len_bytes[2];
  len_bytes[0] = (uint8_t)(length & 0xFFu);
  len_bytes[1] = (uint8_t)(length >> 8);
  enc->crc = tvmrt_crc16(len_bytes, 2);
  stage_raw(enc, (uint8_t)TVMRT_FRAME_START);
  stage_escaped(enc, len_bytes[0]);
  stage_escaped(enc, len_bytes[1]);
}

void tvmrt_frame_put(tvmrt_frame_encoder_t* enc, const uint8_t* data, size_t len) {
  size_t i;
  enc->crc = tvmrt_crc16_update(enc->crc, data, len);
  for (i = 0; i < len; ++i) {
    stage_escaped(enc, data[i]);
  }
}

void tvmrt_frame_end(tvmrt_frame_encoder_t* enc) {
  stage_escaped(enc, (uint8_t)(enc->crc & 0xFFu));
  stage_escaped(enc, (uint8_t)(enc->crc >> 8));
  flush(enc);
}

void tvmrt_frame_write(tvmrt_frame_encoder_t* enc, const uint8_t* payload, uint16_t length) {
  tvmrt_frame_begin(enc, length);
  tvmrt_frame_put(enc, payload, length);
  tvmrt_frame_end(enc);
}
