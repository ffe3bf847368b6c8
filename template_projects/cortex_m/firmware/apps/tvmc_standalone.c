/*
 * project_type standalone: run the model once, at boot, on the input given at create-project time
 * (generated/standalone_input.c), and print what it computed over the UART in lines a person or a script
 * can read (docs/project-types.md, "Standalone output"):
 *
 *   tvmc-standalone-begin model=<name> signature=<16 hex> inputs=<n> outputs=<m>
 *   tvmc-output index=<i> dtype=<dtype> shape=<d0>x<d1>... values=<v0>,<v1>,... name=<tensor name>
 *   tvmc-time ticks=<timer ticks of the run> timer_hz=<timer rate>
 *   tvmc-standalone-end status=<0 or the error>
 *
 * Integers print in decimal, floats as their IEEE-754 bits in hex (0x3f800000 is 1.0), so the text is
 * exact; `tvmc micro flash` turns them back into numbers.
 */
#include <stdint.h>
#include <string.h>

#include "tvmc_app.h"
#include "tvmrt/model.h"
#include "tvmrt/platform.h"

/* Status codes of a standalone run besides the model's own (its run function's return value). */
#define TVMC_STANDALONE_BAD_INPUTS (-1000)

static void put_dtype(const tvmrt_tensor_t* t) {
  switch (t->dtype_code) {
    case TVMRT_DTYPE_INT:
      tvmc_app_puts("int");
      break;
    case TVMRT_DTYPE_UINT:
      tvmc_app_puts("uint");
      break;
    case TVMRT_DTYPE_FLOAT:
      tvmc_app_puts("float");
      break;
    case TVMRT_DTYPE_BFLOAT:
      tvmc_app_puts("bfloat");
      break;
    case TVMRT_DTYPE_BOOL:
      tvmc_app_puts("bool");
      return;
    default:
      tvmc_app_puts("code");
      tvmc_app_put_u64(t->dtype_code);
      tvmc_app_puts("_");
      break;
  }
  tvmc_app_put_u64(t->dtype_bits);
}

/* Element i of a little-endian tensor as an unsigned 64-bit pattern of `bytes` bytes. */
static uint64_t load_bits(const uint8_t* p, unsigned bytes) {
  uint64_t v = 0;
  for (unsigned k = 0; k < bytes; ++k) {
    v |= (uint64_t)p[k] << (8u * k);
  }
  return v;
}

static void put_element(const tvmrt_tensor_t* t, const uint8_t* p) {
  unsigned bytes = t->dtype_bits / 8u;
  uint64_t bits = load_bits(p, bytes);
  if (t->dtype_code == TVMRT_DTYPE_FLOAT || t->dtype_code == TVMRT_DTYPE_BFLOAT) {
    tvmc_app_puts("0x");
    tvmc_app_put_hex(bits, 2u * bytes);
  } else if (t->dtype_code == TVMRT_DTYPE_INT && bytes < 8u) {
    uint64_t sign = (uint64_t)1 << (t->dtype_bits - 1u);
    tvmc_app_put_i64((int64_t)((bits ^ sign) - sign)); /* sign-extend */
  } else if (t->dtype_code == TVMRT_DTYPE_INT) {
    tvmc_app_put_i64((int64_t)bits);
  } else {
    tvmc_app_put_u64(bits);
  }
}

static void put_output(uint32_t index, const tvmrt_tensor_t* t) {
  tvmc_app_puts("tvmc-output index=");
  tvmc_app_put_u64(index);
  tvmc_app_puts(" dtype=");
  put_dtype(t);
  tvmc_app_puts(" shape=");
  for (uint32_t d = 0; d < t->ndim; ++d) {
    if (d > 0) {
      tvmc_app_puts("x");
    }
    tvmc_app_put_u64(t->shape[d]);
  }
  tvmc_app_puts(" values=");
  unsigned bytes = t->dtype_bits / 8u;
  uint32_t count = bytes ? t->size_bytes / bytes : 0u;
  for (uint32_t i = 0; i < count; ++i) {
    if (i > 0) {
      tvmc_app_puts(",");
    }
    put_element(t, &t->data[i * bytes]);
  }
  tvmc_app_puts(" name=");
  tvmc_app_puts(t->name);
  tvmc_app_puts("\r\n");
}

int32_t tvmc_standalone_run(void) {
  const tvmrt_model_t* model = tvmrt_firmware_model();
  tvmc_app_puts("\r\ntvmc-standalone-begin model=");
  tvmc_app_puts(model->name);
  tvmc_app_puts(" signature=");
  tvmc_app_puts(model->signature);
  tvmc_app_puts(" inputs=");
  tvmc_app_put_u64(model->num_inputs);
  tvmc_app_puts(" outputs=");
  tvmc_app_put_u64(model->num_outputs);
  tvmc_app_puts("\r\n");

  int32_t status = 0;
  if (tvmc_standalone_num_inputs != model->num_inputs) {
    status = TVMC_STANDALONE_BAD_INPUTS; /* the generator checks this; a hand-edited project may not */
  }
  for (uint32_t i = 0; status == 0 && i < model->num_inputs; ++i) {
    if (tvmc_standalone_inputs[i].size != model->inputs[i].size_bytes) {
      status = TVMC_STANDALONE_BAD_INPUTS;
    } else if (model->inputs[i].size_bytes > 0u) {
      memcpy(model->inputs[i].data, tvmc_standalone_inputs[i].data, model->inputs[i].size_bytes);
    }
  }
  uint64_t ticks = 0;
  if (status == 0) {
    tvmrt_platform_timer_start();
    status = model->run();
    ticks = tvmrt_platform_timer_elapsed();
  }
  if (status == 0) {
    for (uint32_t i = 0; i < model->num_outputs; ++i) {
      put_output(i, &model->outputs[i]);
    }
    tvmc_app_puts("tvmc-time ticks=");
    tvmc_app_put_u64(ticks);
    tvmc_app_puts(" timer_hz=");
    tvmc_app_put_u64(tvmrt_platform_timer_hz());
    tvmc_app_puts("\r\n");
  }
  tvmc_app_puts("tvmc-standalone-end status=");
  tvmc_app_put_i64(status);
  tvmc_app_puts("\r\n");
  return status;
}
