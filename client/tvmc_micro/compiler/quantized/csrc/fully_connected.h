/* fully_connected.h: int8 FULLY_CONNECTED [batches, depth] x [units, depth]^T. A template: #define the
   parameters below, then #include it (one kernel, TVMC_NAME; the parameters are #undef'd at the end).

   TVMC_FC_BLOCK units at a time with SMLAD over SXTB16-widened input and weight words: each 4-element input
   word is loaded and widened once for all of them (per 4 k and 4 units: 1 input load, 2 SXTB16, 4 weight
   loads, 8 SXTB16, 8 SMLAD = 23 instructions for 16 MACs; no workspace). The bias carries the input zero
   point (sum of w * zp folded at import).

   With TVMC_FC_WIDE (depth a multiple of 4) each input row is first widened into a stack copy (2 * depth
   bytes, in SXTB16 order), so a block reads each 4-element group's two words with one LDRD (per 4 k and
   4 units: 1 LDRD, 4 weight loads, 8 SXTB16, 8 SMLAD = 21 instructions for 16 MACs).

   With TVMC_FC_WIDE_W too (--kernel-weights int16) `weight` is int16, widened at compile time: per block of
   units (TVMC_FC_BLOCK, the last one shorter) and 4-element group, every unit's two SXTB16-order words
   side by side, so each unit's group is one LDRD (per 4 k and 4 units: 5 LDRD and 8 SMLAD = 13
   instructions for 16 MACs).

   Parameters (integer constants): TVMC_NAME, TVMC_PARAMS (data, weight, bias, [rq tables,] out);
   TVMC_FC_BATCHES, TVMC_FC_DEPTH, TVMC_FC_UNITS, TVMC_FC_BLOCK, TVMC_FC_WIDE, TVMC_FC_WIDE_W; the
   requantisation parameters of tvmc_epilogue.inc. */
#include "tvmc_dsp.h"
#include "tvmc_epilogue.inc"
#if TVMC_FC_WIDE_W && !TVMC_FC_WIDE
#error "TVMC_FC_WIDE_W needs TVMC_FC_WIDE (a depth that is a multiple of 4)"
#endif

__attribute__((optimize("no-schedule-insns"))) int32_t TVMC_NAME(TVMC_PARAMS) {
  int32_t b, u;
  (void)u;
#if TVMC_FC_WIDE
  /* The input row widened once into the stack (int16, each 4-element group as its SXTB16 pair of words):
     the unit blocks then read each group with one LDRD instead of a load and two SXTB16 per block. */
  int16_t xw[TVMC_FC_DEPTH] __attribute__((aligned(8)));
#endif
  for (b = 0; b < TVMC_FC_BATCHES; ++b) {
    const int8_t* x = data + b * TVMC_FC_DEPTH;
#if TVMC_FC_WIDE
    {
      int32_t g;
      TVMC_LD2_FENCE(); /* the previous row's LDRDs have read the copy this row overwrites */
      TVMC_UNROLL(4)
      for (g = 0; g < TVMC_FC_DEPTH; g += 4) {
        uint32_t v = tvmc_ld32(x + g);
        int32_t e = tvmc_sxtb16(v), o = tvmc_sxtb16_ror8(v);
        memcpy(xw + g, &e, 4);
        memcpy(xw + g + 2, &o, 4);
      }
      TVMC_LD2_FENCE(); /* the LDRDs of fc_block.inc read xw from here on */
    }
#endif
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
