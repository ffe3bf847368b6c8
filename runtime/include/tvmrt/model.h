/*
 * The model descriptor the device server serves: generated per project from metadata.json by
 * microtvm_api.model_glue.write_model_glue(). The glue owns every buffer named here.
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
  uint8_t* data; /* the model's I/O buffer: inputs are written here, outputs read from here */
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
