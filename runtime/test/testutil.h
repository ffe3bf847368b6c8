/* Minimal test support for the runtime's *_test.c programs (host only: stdio is fine here). */
#ifndef TVMRT_TESTUTIL_H_
#define TVMRT_TESTUTIL_H_

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int tu_checks;
extern int tu_failures;

#define CHECK(cond, ...)                                                            \
  do {                                                                              \
    tu_checks++;                                                                    \
    if (!(cond)) {                                                                  \
      tu_failures++;                                                                \
      fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);      \
      fprintf(stderr, __VA_ARGS__);                                                 \
      fputc('\n', stderr);                                                          \
    }                                                                               \
  } while (0)

/* Prints the summary; returns the process exit code (1 on any failure or when nothing was checked). */
int tu_finish(const char* suite);

/* Bytes written through tvmrt_platform_write by code under test (fake_platform.c). */
extern uint8_t tu_written[1 << 16];
extern size_t tu_written_len;
void tu_clear_written(void);

/* The fake timer advances by this many ticks on every tvmrt_platform_timer_elapsed() call. */
#define TU_TICKS_PER_READ 7u
#define TU_TIMER_HZ 1000u
extern unsigned tu_timer_starts;

/* ---- test vectors parsed out of docs/wire-protocol.md ---- */

#define TV_MAX_LINES 96
#define TV_MAX_LINE 2048

typedef struct {
  char key[16]; /* "data", "crc", ... or ">" / "<" in sessions */
  char value[TV_MAX_LINE];
} tv_line_t;

typedef struct {
  char kind[32];
  char name[64];
  int num_lines;
  tv_line_t lines[TV_MAX_LINES];
} tv_vector_t;

typedef void (*tv_visit_fn)(const tv_vector_t* vector, void* ctx);

/* Calls `visit` for every ```vector block of kind `kind` in the markdown file; returns how many, -1 on error. */
int tv_load(const char* path, const char* kind, tv_visit_fn visit, void* ctx);

/* The value of the first line with `key`, or NULL. */
const char* tv_get(const tv_vector_t* vector, const char* key);

/* Parses space-separated hex bytes ("??" = any byte: mask 0). Returns the count, or -1 if malformed/too long. */
int tv_hex(const char* text, uint8_t* out, uint8_t* mask, size_t capacity);

#endif /* TVMRT_TESTUTIL_H_ */
