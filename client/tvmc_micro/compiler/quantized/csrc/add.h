/* add.h: int8 ADD/SUB of two same-shape tensors with TFLite's arithmetic. A template: #define the
   parameters below, then #include it (one kernel, TVMC_NAME; the parameters are #undef'd at the end).

   Each input is rescaled as MultiplyByQuantizedMultiplier((x - zp) << TVMC_ADD_SHIFT, m, shift), the two
   are summed (or subtracted), then requantised to the output. The rescaled value depends only on the input
   byte, so each call first fills a 256-entry int32 table per input in the workspace (2 KB); an element then
   costs two byte loads, two table loads, an add, the epilogue and a store. Reads of element i precede its
   write, so the output may sit over either input.

   Parameters (integer constants): TVMC_NAME, TVMC_PARAMS (a, b, out, ws); TVMC_ADD_N elements;
   TVMC_ADD_OP + or -; TVMC_ADD_SHIFT; TVMC_ADD_ZP_A, TVMC_ADD_MULT_A, TVMC_ADD_LEFT_A, TVMC_ADD_RIGHT_A
   (and _B): each input's zero point and rescale; the requantisation parameters of tvmc_epilogue.inc. */
#include "tvmc_dsp.h"
#include "tvmc_epilogue.inc"

int32_t TVMC_NAME(TVMC_PARAMS) {
  int32_t* ta = ws;
  int32_t* tb = ws + 256;
  int32_t v, i;
  for (v = 0; v < 256; ++v)
    ta[v] = tvmc_rq((int32_t)((uint32_t)((int32_t)(int8_t)(uint8_t)v - (TVMC_ADD_ZP_A)) << TVMC_ADD_SHIFT),
                    TVMC_ADD_MULT_A, TVMC_ADD_LEFT_A, TVMC_ADD_RIGHT_A);
  for (v = 0; v < 256; ++v)
    tb[v] = tvmc_rq((int32_t)((uint32_t)((int32_t)(int8_t)(uint8_t)v - (TVMC_ADD_ZP_B)) << TVMC_ADD_SHIFT),
                    TVMC_ADD_MULT_B, TVMC_ADD_LEFT_B, TVMC_ADD_RIGHT_B);
  for (i = 0; i < TVMC_ADD_N - TVMC_ADD_N % 4; i += 4) {
    int32_t k;
    TVMC_UNROLL(4)
    for (k = 0; k < 4; ++k) {
      int32_t s = ta[(uint8_t)a[i + k]] TVMC_ADD_OP tb[(uint8_t)b[i + k]];
      out[i + k] = TVMC_RQ1(s, 0);
    }
  }
  for (; i < TVMC_ADD_N; ++i) {
    int32_t s = ta[(uint8_t)a[i]] TVMC_ADD_OP tb[(uint8_t)b[i]];
    out[i] = TVMC_RQ1(s, 0);
  }
  return 0;
}

#include "tvmc_undef.inc"
