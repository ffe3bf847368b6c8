/*
 * project_type mlperftiny: the device side of the MLPerf Tiny / EEMBC EnergyRunner benchmark API
 * (mlcommons/tiny benchmark/api/), in performance mode, over the board UART. Written for tvmc-micro from
 * the API's description; the command set and replies are in docs/project-types.md.
 *
 * Commands end with '%' ('\r' and '\n' are ignored); words are separated by spaces. Every reply line
 * starts with "m-" (or "e-" for an error) and ends with "\r\n"; every command's reply ends with
 * "m-ready". The input buffer ("db") holds the model's inputs back to back, in metadata order and in
 * the model's own dtypes (the bytes `tvmc run` would send), so a loaded buffer must be exactly
 * TVMC_APP_INPUT_BYTES long before "infer".
 */
#include <stdint.h>
#include <string.h>

#include "tvmc_app.h"
#include "tvmrt/model.h"
#include "tvmrt/platform.h"

#define COMMAND_BYTES 256u /* the runner sends "db " + 62 hex digits at most; room for more */
#define DEFAULT_WARMUPS 10u /* what the API does when "infer N" names no warmup count */

static char g_command[COMMAND_BYTES + 1u];
static size_t g_command_len;
static int g_command_overflow;

static uint8_t g_db[TVMC_APP_INPUT_BYTES > 0 ? TVMC_APP_INPUT_BYTES : 1] TVMRT_ALIGNED(16);
static uint32_t g_db_expected; /* from "db load N" (0: no load yet) */
static uint32_t g_db_filled;

static void line(const char* text) {
  tvmc_app_puts(text);
  tvmc_app_puts("\r\n");
}

static void error2(const char* what, const char* detail) {
  tvmc_app_puts("e-[");
  tvmc_app_puts(what);
  tvmc_app_puts(detail);
  line("]");
}

/* A decimal number of at most 9 digits; -1 for anything else (no sign, no trailing junk). */
static int32_t parse_count(const char* text) {
  int32_t value = 0;
  size_t n = 0;
  for (; text[n] != '\0'; ++n) {
    if (text[n] < '0' || text[n] > '9' || n >= 9u) {
      return -1;
    }
    value = value * 10 + (text[n] - '0');
  }
  return n == 0 ? -1 : value;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

/* Splits `text` in place at spaces; returns the number of words (at most `cap`; more is reported). */
static size_t split(char* text, char** words, size_t cap) {
  size_t n = 0;
  char* p = text;
  for (;;) {
    while (*p == ' ') {
      *p++ = '\0';
    }
    if (*p == '\0') {
      return n;
    }
    if (n == cap) {
      return cap + 1u;
    }
    words[n++] = p;
    while (*p != '\0' && *p != ' ') {
      ++p;
    }
  }
}

static void timestamp(void) {
  uint64_t ticks = tvmrt_platform_timer_elapsed();
  uint32_t hz = tvmrt_platform_timer_hz();
  /* ticks * 1e6 / hz without overflow for any 64-bit tick count the timer reaches in practice. */
  uint64_t us = (ticks / hz) * 1000000u + ((ticks % hz) * 1000000u) / hz;
  tvmc_app_puts("m-lap-us-");
  tvmc_app_put_u64(us);
  tvmc_app_puts("\r\n");
}

static float element_as_float(const tvmrt_tensor_t* t, uint32_t i) {
  const uint8_t* p = &t->data[i * (t->dtype_bits / 8u)];
  switch (t->dtype_code) {
    case TVMRT_DTYPE_FLOAT:
      if (t->dtype_bits == 32u) {
        float f;
        memcpy(&f, p, sizeof f);
        return f;
      }
      if (t->dtype_bits == 64u) {
        double d;
        memcpy(&d, p, sizeof d);
        return (float)d;
      }
      return 0.0f; /* float16: not produced by the compiler */
    case TVMRT_DTYPE_INT:
      switch (t->dtype_bits) {
        case 8u: return (float)(int8_t)p[0];
        case 16u: { int16_t v; memcpy(&v, p, sizeof v); return (float)v; }
        case 32u: { int32_t v; memcpy(&v, p, sizeof v); return (float)v; }
        default: { int64_t v; memcpy(&v, p, sizeof v); return (float)v; }
      }
    default:
      switch (t->dtype_bits) {
        case 8u: return (float)p[0];
        case 16u: { uint16_t v; memcpy(&v, p, sizeof v); return (float)v; }
        case 32u: { uint32_t v; memcpy(&v, p, sizeof v); return (float)v; }
        default: { uint64_t v; memcpy(&v, p, sizeof v); return (float)v; }
      }
  }
}

/* "m-results-[v0,v1,...]": every output element, dequantized with the output's scale and zero point
   (TVMC_OUTPUT_<i>_SCALE / _ZERO_POINT in tvmc_app_config.h) as float32, outputs back to back; then
   "m-results-raw-[hex]": the outputs' bytes exactly as the model wrote them (tvmc-micro's addition). */
static void results(void) {
  const tvmrt_model_t* model = tvmrt_firmware_model();
  static const float kScale[] = TVMC_OUTPUT_SCALES;
  static const int32_t kZeroPoint[] = TVMC_OUTPUT_ZERO_POINTS;
  tvmc_app_puts("m-results-[");
  int first = 1;
  for (uint32_t o = 0; o < model->num_outputs; ++o) {
    const tvmrt_tensor_t* t = &model->outputs[o];
    uint32_t count = t->dtype_bits >= 8u ? t->size_bytes / (t->dtype_bits / 8u) : 0u;
    for (uint32_t i = 0; i < count; ++i) {
      float v = element_as_float(t, i);
      if (kScale[o] != 0.0f) {
        v = (v - (float)kZeroPoint[o]) * kScale[o];
      }
      if (!first) {
        tvmc_app_puts(",");
      }
      first = 0;
      tvmc_app_put_f32(v);
    }
  }
  line("]");
  tvmc_app_puts("m-results-raw-[");
  for (uint32_t o = 0; o < model->num_outputs; ++o) {
    const tvmrt_tensor_t* t = &model->outputs[o];
    for (uint32_t i = 0; i < t->size_bytes; ++i) {
      tvmc_app_put_hex(t->data[i], 2u);
    }
  }
  line("]");
}

/* Every inference starts from the loaded db: the model may keep its inputs in its arena, where a run
   consumes them (docs/model-library-format.md), so they are copied in before each run, not once. */
static int32_t run_model(const tvmrt_model_t* model) {
  uint32_t offset = 0;
  for (uint32_t i = 0; i < model->num_inputs; ++i) {
    memcpy(model->inputs[i].data, &g_db[offset], model->inputs[i].size_bytes);
    offset += model->inputs[i].size_bytes;
  }
  int32_t status = model->run();
  if (status != 0) {
    tvmc_app_puts("e-[Inference failed with status ");
    tvmc_app_put_i64(status);
    line("]");
  }
  return status;
}

static void infer(char** words, size_t n) {
  int32_t count = 1;
  int32_t warmups = (int32_t)DEFAULT_WARMUPS;
  if (n > 3u) {
    line("e-[Usage: infer N [W]]");
    return;
  }
  if (n >= 2u && (count = parse_count(words[1])) <= 0) {
    error2("Inference iterations must be >0: ", words[1]);
    return;
  }
  if (n == 3u && (warmups = parse_count(words[2])) < 0) {
    error2("Inference warmup must be >=0: ", words[2]);
    return;
  }
  if (g_db_filled != TVMC_APP_INPUT_BYTES) {
    tvmc_app_puts("e-[Input db has ");
    tvmc_app_put_u64(g_db_filled);
    tvmc_app_puts(" bytes, the model needs ");
    tvmc_app_put_u64(TVMC_APP_INPUT_BYTES);
    line(": db load N then db HEX...]");
    return;
  }
  const tvmrt_model_t* model = tvmrt_firmware_model();
  tvmc_app_puts("m-warmup-start-");
  tvmc_app_put_u64((uint64_t)warmups);
  tvmc_app_puts("\r\n");
  for (int32_t i = 0; i < warmups; ++i) {
    if (run_model(model) != 0) {
      return;
    }
  }
  line("m-warmup-done");
  tvmc_app_puts("m-infer-start-");
  tvmc_app_put_u64((uint64_t)count);
  tvmc_app_puts("\r\n");
  timestamp();
  for (int32_t i = 0; i < count; ++i) {
    if (run_model(model) != 0) {
      return;
    }
  }
  timestamp();
  line("m-infer-done");
  results();
}

static void db_print(void) {
  for (uint32_t i = 0; i < g_db_filled; ++i) {
    if (i % 8u == 0u) {
      tvmc_app_puts("m-buffer-");
    }
    tvmc_app_put_hex(g_db[i], 2u);
    tvmc_app_puts((i + 1u) % 8u == 0u || i + 1u == g_db_filled ? "\r\n" : "-");
  }
}

static void db(char** words, size_t n) {
  if (n < 2u) {
    line("e-[Command 'db' requires a subcommand: load N, print or hex bytes]");
  } else if (strcmp(words[1], "load") == 0) {
    int32_t size = n == 3u ? parse_count(words[2]) : -1;
    if (size <= 0) {
      line("e-[Command 'db load' requires a number of bytes >0]");
    } else if ((uint32_t)size > TVMC_APP_INPUT_BYTES) {
      tvmc_app_puts("e-[Supplied buffer size ");
      tvmc_app_put_u64((uint64_t)size);
      tvmc_app_puts(" exceeds the model's input size ");
      tvmc_app_put_u64(TVMC_APP_INPUT_BYTES);
      line("]");
    } else {
      g_db_expected = (uint32_t)size;
      g_db_filled = 0;
      tvmc_app_puts("m-[Expecting ");
      tvmc_app_put_u64((uint64_t)size);
      line(" bytes]");
    }
  } else if (strcmp(words[1], "print") == 0) {
    db_print();
  } else if (n != 2u) {
    line("e-[Usage: db load N | db print | db HEXBYTES]");
  } else if (g_db_expected == 0u) {
    line("e-[No buffer: send db load N first]");
  } else {
    const char* hex = words[1];
    size_t digits = strlen(hex);
    if (digits % 2u != 0u) {
      line("e-[Odd number of hex digits]");
      return;
    }
    for (size_t i = 0; i < digits; i += 2u) {
      int hi = hex_digit(hex[i]);
      int lo = hex_digit(hex[i + 1u]);
      if (hi < 0 || lo < 0) {
        tvmc_app_puts("e-[Invalid hex digit in '");
        tvmrt_platform_write((const uint8_t*)&hex[i], 2u);
        line("']");
        return;
      }
      if (g_db_filled < g_db_expected) {
        g_db[g_db_filled++] = (uint8_t)((hi << 4) | lo);
        if (g_db_filled == g_db_expected) {
          line("m-load-done"); /* further digits of this command are ignored */
        }
      }
    }
  }
}

static void profile(void) {
  const tvmrt_model_t* model = tvmrt_firmware_model();
  line("m-profile-[tvmc-micro MLPerf Tiny firmware]");
  tvmc_app_puts("m-model-[");
  tvmc_app_puts(TVMC_MLPERF_MODEL_ID);
  line("]");
  tvmc_app_puts("m-tvmc-model-[");
  tvmc_app_puts(model->name);
  line("]");
  tvmc_app_puts("m-tvmc-signature-[");
  tvmc_app_puts(model->signature);
  line("]");
}

static void help(void) {
  line("m-help-name: the device's name");
  line("m-help-profile: the benchmark profile and model id");
  line("m-help-timestamp: m-lap-us-<microseconds>");
  line("m-help-db load N: expect N input bytes; db HEXBYTES: append them; db print: show them");
  line("m-help-infer N [W]: W warmup runs (default 10), then N timed runs, then the results");
  line("m-help-results: m-results-[dequantized outputs] and m-results-raw-[output bytes]");
}

static void dispatch(char* text) {
  char* words[4];
  size_t n = split(text, words, 3u);
  if (n == 0u) {
    line("e-[Empty command]");
  } else if (n > 3u) {
    line("e-[Too many words in the command]");
  } else if (strcmp(words[0], "name") == 0 && n == 1u) {
    line("m-name-dut-[tvmc-micro]");
  } else if (strcmp(words[0], "profile") == 0 && n == 1u) {
    profile();
  } else if (strcmp(words[0], "help") == 0 && n == 1u) {
    help();
  } else if (strcmp(words[0], "timestamp") == 0 && n == 1u) {
    timestamp();
  } else if (strcmp(words[0], "db") == 0) {
    db(words, n);
  } else if (strcmp(words[0], "infer") == 0) {
    infer(words, n);
  } else if (strcmp(words[0], "results") == 0 && n == 1u) {
    results();
  } else {
    error2("Unknown command: ", words[0]);
  }
  line("m-ready");
}

void tvmc_mlperf_init(void) {
  tvmrt_platform_timer_start(); /* m-lap-us counts from boot */
  line("m-timestamp-mode-performance");
  timestamp();
  line("m-init-done");
  line("m-ready");
}

void tvmc_mlperf_feed(char c) {
  if (c == '\r' || c == '\n') {
    return;
  }
  if (c != '%') {
    if (g_command_len < COMMAND_BYTES) {
      g_command[g_command_len++] = c;
    } else {
      g_command_overflow = 1;
    }
    return;
  }
  g_command[g_command_len] = '\0';
  if (g_command_overflow) {
    line("e-[Command longer than 256 characters]");
    line("m-ready");
  } else {
    dispatch(g_command);
  }
  g_command_len = 0;
  g_command_overflow = 0;
}
