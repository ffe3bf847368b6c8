/* crc16.c against the CRC vectors of docs/wire-protocol.md, plus incremental use. */
#include "tvmrt/crc16.h"

#include <stdlib.h>
#include <string.h>

#include "../test/testutil.h"

static void check_vector(const tv_vector_t* v, void* ctx) {
  uint8_t data[512];
  int n;
  const char* ascii = tv_get(v, "ascii");
  const char* hex = tv_get(v, "data");
  const char* expected = tv_get(v, "crc");
  unsigned long want;
  (void)ctx;
  CHECK(expected != NULL, "vector %s has no crc", v->name);
  if (expected == NULL) return;
  want = strtoul(expected, NULL, 16);
  if (ascii != NULL) {
    n = (int)strlen(ascii);
    memcpy(data, ascii, (size_t)n);
  } else {
    n = tv_hex(hex != NULL ? hex : "", data, NULL, sizeof(data));
  }
  CHECK(n >= 0, "vector %s: bad data", v->name);
  if (n < 0) return;
  CHECK(tvmrt_crc16(data, (size_t)n) == want, "vector %s: crc %04X, want %04lX", v->name,
        tvmrt_crc16(data, (size_t)n), want);
  if (n > 1) {
    /* Feeding the bytes in two pieces must give the same CRC (the framer does exactly that). */
    uint16_t crc = tvmrt_crc16_update(TVMRT_CRC16_INIT, data, 1);
    crc = tvmrt_crc16_update(crc, data + 1, (size_t)n - 1);
    CHECK(crc == want, "vector %s: incremental crc %04X", v->name, crc);
  }
}

int main(int argc, char** argv) {
  int count;
  if (argc != 2) {
    fprintf(stderr, "usage: %s docs/wire-protocol.md\n", argv[0]);
    return 2;
  }
  count = tv_load(argv[1], "crc", check_vector, NULL);
  CHECK(count >= 4, "expected at least 4 crc vectors, found %d", count);
  return tu_finish("crc16_test");
}
