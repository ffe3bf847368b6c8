/* fully_connected.h: int8 FULLY_CONNECTED [batches, depth] x [units, depth]^T. A template: #define the
   parameters below, then #include it (one kernel, TVMC_NAME; the parameters are #undef'd at the end).

   TVMC_FC_BLOCK units at a time with SMLAD over SXTB16-widened input and weight words: each 4-element input
   word is loaded and widened once for all of them (per 4 k and 4 units: 1 input load, 2 SXTB16, 4 weight
   loads, 8 SXTB16, 8 SMLAD = 23 instructions for 16 MACs; no workspace). The bias carries the input zero
   point (sum of w * zp folded at import).

   Parameters (integer constants): TVMC_NAME, TVMC_PARAMS (data, weight, bias, [rq tables,] out);
   TVMC_FC_BATCHES, TVMC_FC_DEPTH, TVMC_FC_UNITS, TVMC_FC_BLOCK; the requantisation parameters of
   tvmc_epilogue.inc. */
#include "tvmc_dsp.h"
#include "tvmc_epilogue.inc"

__attribute__((optimize("no-schedule-insns"))) int32_t TVMC_NAME(TVMC_PARAMS) {
  int32_t b, u;
  (void)u;
  for (b = 0; b < TVMC_FC_BATCHES; ++b) {
    const int8_t* x = data + b * TVMC_FC_DEPTH;
    int8_t* o = out + b * TVMC_FC_UNITS;
#if TVMC_FC_UNITS >= TVMC_FC_BLOCK
    for (u = 0; u < TVMC_FC_UNITS - TVMC_FC_UNITS % TVMC_FC_BLOCK; u += TVMC_FC_BLOCK) {
#define TVMC_NUNITS TVMC_FC_BLOCK
#define TVMC_FIRST u
#include "fc_block.inc"
#undef TVMC_NUNITS
#undef TVMC_FIRST
    }
#endif
#if TVMC_FC_UNITS % TVMC_FC_BLOCK
    {
#define TVMC_NUNITS (TVMC_FC_UNITS % TVMC_FC_BLOCK)
#define TVMC_FIRST (TVMC_FC_UNITS - TVMC_FC_UNITS % TVMC_FC_BLOCK)
#include "fc_block.inc"
#undef TVMC_NUNITS
#undef TVMC_FIRST
    }
#endif
  }
  return 0;
}

#include "tvmc_undef.inc"
