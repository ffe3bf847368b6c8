/*
 * The model descriptor the device server serves: generated per project from metadata.json by
 * microtvm_api.model_glue.write_model_glue().
 *
 * Who owns the buffers named here: the glue owns the descriptor's tables (names, shapes, op_names,
 * op_ticks). The tensors' data is the model's I/O:
 * - inputs and outputs in the arena (metadata io_buffers "arena", the default): `data` points at the
 *   tensor's slot in the model's arena, which the compiled model owns (the executor's static array, or
 *   the buffer given to tvmgen_<name>_set_arena() under -DTVMGEN_<NAME>_EXTERNAL_ARENA);
 *   tvmrt_firmware_model() fills these pointers in when called. A run consumes its inputs (their bytes
 *   are reused), so inputs are written before every run; outputs stay valid until the next run.
 * - io_buffers "separate": `data` points at 16-byte-aligned static buffers the glue owns and passes to
 *   tvmgen_<name>_run().
 */
#ifndef TVMRT_MODEL_H_
#define TVMRT_MODEL_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define TVMRT_ALIGNED(n) __attribute__((aligned(n)))
#else
#define TVMRT_ALIGNED(n)
#endif

/* DLPack type codes, so dtypes mean the same thing here, in TVM and on the host. */
#define TVMRT_DTYPE_INT 0u
#define TVMRT_DTYPE_UINT 1u
#define TVMRT_DTYPE_FLOAT 2u
#define TVMRT_DTYPE_BFLOAT 4u
#define TVMRT_DTYPE_BOOL 6u

typedef struct {
  const char* name;
  uint8_t dtype_code;
  uint8_t dtype_bits;
  uint8_t ndim;
  const uint32_t* shape;
  uint32_t size_bytes;
  uint8_t* data; /* inputs are written here, outputs read from here: an arena slot or a glue buffer */
} tvmrt_tensor_t;

typedef struct {
  const char* name;      /* model name (C identifier), as in metadata.json */
  const char* signature; /* 16 hex chars, DESIGN section 4 */
  uint32_t num_inputs;
  const tvmrt_tensor_t* inputs;
  uint32_t num_outputs;
  const tvmrt_tensor_t* outputs;
  uint32_t num_ops;
  const char* const* op_names; /* executor call order */
  uint64_t* op_ticks;          /* num_ops entries, filled by a profiled run */
  int32_t (*run)(void);        /* runs the model on the buffers above; 0 on success */
} tvmrt_model_t;

/* Defined by the generated glue: the one model this firmware serves. */
const tvmrt_model_t* tvmrt_firmware_model(void);

#ifdef __cplusplus
}
#endif

#endif /* TVMRT_MODEL_H_ */
