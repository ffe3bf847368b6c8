/* frame.c: encode/decode the frame vectors of docs/wire-protocol.md, damaged streams, chunked staging. */
#include "tvmrt/frame.h"

#include <stdlib.h>
#include <string.h>

#include "../test/testutil.h"

typedef struct {
  uint8_t data[4096];
  size_t len;
  int writes;
} sink_t;

static void sink_write(void* ctx, const uint8_t* data, size_t len) {
  sink_t* s = (sink_t*)ctx;
  memcpy(s->data + s->len, data, len);
  s->len += len;
  s->writes++;
}

static void check_frame(const tv_vector_t* v, void* ctx) {
  uint8_t payload[1024], frame[2048], buffer[1024];
  int np = tv_hex(tv_get(v, "payload") ? tv_get(v, "payload") : "", payload, NULL, sizeof(payload));
  int nf = tv_hex(tv_get(v, "frame") ? tv_get(v, "frame") : "", frame, NULL, sizeof(frame));
  sink_t sink;
  tvmrt_frame_encoder_t enc;
  tvmrt_frame_decoder_t dec;
  int i, oks = 0;
  (void)ctx;
  CHECK(np >= 0 && nf > 0, "vector %s: bad hex", v->name);
  if (np < 0 || nf <= 0) return;

  memset(&sink, 0, sizeof(sink));
  tvmrt_frame_encoder_init(&enc, sink_write, &sink);
  tvmrt_frame_write(&enc, payload, (uint16_t)np);
  CHECK(sink.len == (size_t)nf && memcmp(sink.data, frame, (size_t)nf) == 0, "vector %s: encoding differs",
        v->name);

  /* The same frame given through several put() calls. */
  memset(&sink, 0, sizeof(sink));
  tvmrt_frame_begin(&enc, (uint16_t)np);
  for (i = 0; i < np; ++i) tvmrt_frame_put(&enc, payload + i, 1);
  tvmrt_frame_end(&enc);
  CHECK(sink.len == (size_t)nf && memcmp(sink.data, frame, (size_t)nf) == 0,
        "vector %s: piecewise encoding differs", v->name);

  tvmrt_frame_decoder_init(&dec, buffer, sizeof(buffer));
  for (i = 0; i < nf; ++i) {
    tvmrt_frame_event_t ev = tvmrt_frame_decoder_push(&dec, frame[i]);
    if (ev == TVMRT_FRAME_OK) {
      ++oks;
      CHECK(i == nf - 1, "vector %s: frame completed early", v->name);
      CHECK(dec.length == (uint16_t)np && memcmp(dec.buffer, payload, (size_t)np) == 0,
            "vector %s: decoded payload differs", v->name);
    } else {
      CHECK(ev == TVMRT_FRAME_NONE, "vector %s: decoder event %d", v->name, (int)ev);
    }
  }
  CHECK(oks == 1, "vector %s: %d frames decoded", v->name, oks);
}

static int event_code(const char* name) {
  static const char* const kNames[] = {"NONE", "OK", "BAD_CRC", "TOO_LONG", "TRUNCATED", "BAD_ESCAPE"};
  int i;
  for (i = 0; i < 6; ++i) {
    if (strcmp(kNames[i], name) == 0) return i;
  }
  return -1;
}

static void check_decode(const tv_vector_t* v, void* ctx) {
  uint8_t bytes[2048], payload[1024], buffer[1024];
  int nb = tv_hex(tv_get(v, "bytes"), bytes, NULL, sizeof(bytes));
  const char* cap_text = tv_get(v, "capacity");
  const char* events = tv_get(v, "events");
  const char* payload_hex = tv_get(v, "payload");
  int np = payload_hex != NULL ? tv_hex(payload_hex, payload, NULL, sizeof(payload)) : -1;
  size_t capacity = cap_text != NULL ? (size_t)strtoul(cap_text, NULL, 10) : 0;
  int expected[32], n_expected = 0, n_seen = 0, i;
  char names[256];
  char* tok;
  tvmrt_frame_decoder_t dec;
  (void)ctx;
  CHECK(nb > 0 && events != NULL && capacity > 0 && capacity <= sizeof(buffer), "vector %s incomplete",
        v->name);
  if (nb <= 0 || events == NULL || capacity == 0 || capacity > sizeof(buffer)) return;
  strncpy(names, events, sizeof(names) - 1);
  names[sizeof(names) - 1] = '\0';
  for (tok = strtok(names, " "); tok != NULL && n_expected < 32; tok = strtok(NULL, " ")) {
    expected[n_expected++] = event_code(tok);
  }
  tvmrt_frame_decoder_init(&dec, buffer, capacity);
  for (i = 0; i < nb; ++i) {
    tvmrt_frame_event_t ev = tvmrt_frame_decoder_push(&dec, bytes[i]);
    if (ev == TVMRT_FRAME_NONE) continue;
    CHECK(n_seen < n_expected && expected[n_seen] == (int)ev, "vector %s: event #%d is %d", v->name,
          n_seen, (int)ev);
    ++n_seen;
    if (ev == TVMRT_FRAME_OK && np >= 0) {
      CHECK(dec.length == (uint16_t)np && memcmp(dec.buffer, payload, (size_t)np) == 0,
            "vector %s: payload differs", v->name);
    }
  }
  CHECK(n_seen == n_expected, "vector %s: %d events, want %d", v->name, n_seen, n_expected);
}

/* Frames bigger than the staging buffer go out in several writes and still decode. */
static void check_large_frame(void) {
  static uint8_t payload[3000], buffer[3000];
  sink_t* sink = (sink_t*)calloc(1, sizeof(sink_t) * 3);
  tvmrt_frame_encoder_t enc;
  tvmrt_frame_decoder_t dec;
  size_t i;
  int oks = 0;
  for (i = 0; i < sizeof(payload); ++i) payload[i] = (uint8_t)(i * 31u + 0x7Eu * (i % 3u == 0u));
  tvmrt_frame_encoder_init(&enc, sink_write, sink);
  tvmrt_frame_write(&enc, payload, (uint16_t)sizeof(payload));
  CHECK(sink->writes > 1, "a 3000-byte frame was written in %d writes", sink->writes);
  tvmrt_frame_decoder_init(&dec, buffer, sizeof(buffer));
  for (i = 0; i < sink->len; ++i) {
    if (tvmrt_frame_decoder_push(&dec, sink->data[i]) == TVMRT_FRAME_OK) ++oks;
  }
  CHECK(oks == 1 && dec.length == sizeof(payload) && memcmp(buffer, payload, sizeof(payload)) == 0,
        "large frame round trip failed");
  /* Every single-bit flip in the frame is detected, never delivered as a different payload. */
  for (i = 1; i < sink->len && i < 64; ++i) {
    size_t j;
    int good = 0;
    sink->data[i] ^= 0x04u;
    tvmrt_frame_decoder_init(&dec, buffer, sizeof(buffer));
    for (j = 0; j < sink->len; ++j) {
      if (tvmrt_frame_decoder_push(&dec, sink->data[j]) == TVMRT_FRAME_OK) ++good;
    }
    sink->data[i] ^= 0x04u;
    CHECK(good == 0, "bit flip at byte %u was not detected", (unsigned)i);
  }
  free(sink);
}

int main(int argc, char** argv) {
  int frames, decodes;
  if (argc != 2) {
    fprintf(stderr, "usage: %s docs/wire-protocol.md\n", argv[0]);
    return 2;
  }
  frames = tv_load(argv[1], "frame", check_frame, NULL);
  decodes = tv_load(argv[1], "frame-decode", check_decode, NULL);
  CHECK(frames >= 4, "expected at least 4 frame vectors, found %d", frames);
  CHECK(decodes >= 4, "expected at least 4 frame-decode vectors, found %d", decodes);
  check_large_frame();
  return tu_finish("frame_test");
}
