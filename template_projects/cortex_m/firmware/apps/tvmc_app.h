/*
 * Firmware apps that run a model without the host-driven RPC session (project_type standalone and
 * mlperftiny). Portable C over two seams only: the runtime's porting layer (tvmrt/platform.h: UART
 * write, timer) and the generated model glue (tvmrt/model.h: the model's buffers and run function). Each
 * platform's main() (cortex_m firmware/<type>_main.c, Zephyr src/main_<type>.c) initialises the board and
 * calls these; the same files serve both templates.
 */
#ifndef TVMC_APP_H_
#define TVMC_APP_H_

#include <stddef.h>
#include <stdint.h>

#include "tvmc_app_config.h" /* generated per project: TVMC_APP_INPUT_BYTES, TVMC_MLPERF_MODEL_ID */

#ifdef __cplusplus
extern "C" {
#endif

/* ---- text over the UART (tvmc_app_text.c) ---------------------------------------------------------- */
void tvmc_app_puts(const char* text);
void tvmc_app_put_u64(uint64_t value);
void tvmc_app_put_i64(int64_t value);
/* `digits` lowercase hex digits of value, no prefix. */
void tvmc_app_put_hex(uint64_t value, unsigned digits);
/* A float32 with 9 significant digits ("1.23456789e-01"): enough to give back the exact float32. */
void tvmc_app_put_f32(float value);

/* ---- standalone (tvmc_standalone.c) ---------------------------------------------------------------- */
typedef struct {
  const uint8_t* data;
  uint32_t size;
} tvmc_app_blob_t;

/* Generated from the project's input .npz (generated/standalone_input.c): one blob per model input. */
extern const tvmc_app_blob_t tvmc_standalone_inputs[];
extern const uint32_t tvmc_standalone_num_inputs;

/* Copies the inputs in, runs the model once (timed), prints the lines docs/project-types.md documents;
   returns the model's status (0: success, else the failing step's code). */
int32_t tvmc_standalone_run(void);

/* ---- MLPerf Tiny / EEMBC EnergyRunner device API (tvmc_mlperftiny.c) ------------------------------- */
/* Prints the boot lines (m-timestamp-mode-performance, m-init-done, m-ready). */
void tvmc_mlperf_init(void);
/* One received character; a '%' completes a command, which runs before this returns. */
void tvmc_mlperf_feed(char c);

#ifdef __cplusplus
}
#endif

#endif /* TVMC_APP_H_ */
