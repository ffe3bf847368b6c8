/*
 * Per-operator timing. The generated executor calls tvmgen_op_hook(k) before operator k and
 * tvmgen_op_hook(n) after the last one (when built with -DTVMGEN_PROFILE); the glue forwards that to
 * tvmrt_profiler_hook(). The hook has no context argument, so the active profile is one static record.
 */
#ifndef TVMRT_PROFILER_H_
#define TVMRT_PROFILER_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Start recording into ticks[0..num_ops); restarts the platform timer. */
void tvmrt_profiler_begin(uint64_t* ticks, uint32_t num_ops);

/* Called at each operator boundary; a no-op when no profile is active. */
void tvmrt_profiler_hook(uint32_t index);

/*
 * Stop recording. Returns 1 when every boundary 0..num_ops was seen exactly in order (the executor
 * was built with TVMGEN_PROFILE), else 0. `*total_ticks` gets the time from boundary 0 to the last.
 */
int tvmrt_profiler_end(uint64_t* total_ticks);

#ifdef __cplusplus
}
#endif

#endif /* TVMRT_PROFILER_H_ */
