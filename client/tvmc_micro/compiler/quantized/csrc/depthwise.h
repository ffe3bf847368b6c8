/* depthwise.h: int8 DEPTHWISE_CONV_2D (multiplier 1, NHWC data, [1, KH, KW, C] weights). A template:
   #define the parameters below, then #include it (one kernel, TVMC_NAME; the parameters are #undef'd at
   the end).

   Blocks of TVMC_DW_PIX output pixels; per block 4 channels at a time with SMLABB/SMLATT, each tap's
   weight word loaded and widened once for every pixel of the block (per tap and 4 channels of a 2-pixel
   block: 17 instructions for 8 MACs). A block whose pixels read only in-image taps addresses them from one
   base pointer per pixel at constant offsets; other blocks resolve each tap once into a table where a
   zero-point row stands in for out-of-image taps. Channels past the last multiple of 4: one by one.

   Parameters (integer constants): TVMC_NAME, TVMC_PARAMS (data, weight, bias, [rq tables,] out);
   TVMC_IH, TVMC_IW, TVMC_CH, TVMC_OH, TVMC_OW, TVMC_KH, TVMC_KW, TVMC_SH, TVMC_SW, TVMC_DH, TVMC_DW,
   TVMC_PT, TVMC_PL, TVMC_IN_ZP; TVMC_DW_WIDE 1 to widen the weights once per call on the stack
   (18 bytes per channel; needs TVMC_CH >= 4); TVMC_DW_PIX pixels per full block, TVMC_DW_FULL pixels in full blocks,
   TVMC_DW_REST pixels in the tail block; TVMC_DW_INTERIOR 1 when blocks inside the image take the
   constant-offset path, TVMC_DW_BORDER 1 when some block reads outside the image (the tap-table path);
   and the requantisation parameters of tvmc_epilogue.inc. */
#include "tvmc_dsp.h"
#include "tvmc_epilogue.inc"
/* Byte offset of tap t from tap 0 of the same pixel. */
#define TVMC_DW_OFFSET(t) ((((t) / TVMC_KW) * TVMC_DH * TVMC_IW + ((t) % TVMC_KW) * TVMC_DW) * TVMC_CH)

__attribute__((optimize("no-schedule-insns"))) int32_t TVMC_NAME(TVMC_PARAMS) {
  int32_t p = 0, c;
#if TVMC_DW_WIDE
  /* The weights of every full 4-channel group widened once per call in SXTB16 order, group by group and
     tap by tap (word pairs even/odd channels, so a tap's two words are one LDRD at a small offset): per
     tap of every block 1 instruction instead of a load and two SXTB16; 2 * KH * KW * (TVMC_CH / 4 * 4) bytes of
     stack. */
  int32_t wide[(TVMC_CH / 4) * TVMC_KH * TVMC_KW * 2] __attribute__((aligned(8)));
  {
    int32_t g, t;
    for (g = 0; g < TVMC_CH / 4; ++g)
      for (t = 0; t < TVMC_KH * TVMC_KW; ++t) {
        uint32_t w = tvmc_ld32(weight + t * TVMC_CH + 4 * g);
        wide[(g * TVMC_KH * TVMC_KW + t) * 2] = tvmc_sxtb16(w);
        wide[(g * TVMC_KH * TVMC_KW + t) * 2 + 1] = tvmc_sxtb16_ror8(w);
      }
  }
#endif
#if TVMC_DW_BORDER
  int8_t zrow[(TVMC_CH + 3) / 4 * 4] __attribute__((aligned(4)));
  const int8_t* tap[TVMC_DW_PIX][TVMC_KH * TVMC_KW];
  int32_t t;
  memset(zrow, (TVMC_IN_ZP) & 0xff, sizeof(zrow));
#endif
#if TVMC_DW_FULL
  for (; p < TVMC_DW_FULL; p += TVMC_DW_PIX) {
#define TVMC_NPIX TVMC_DW_PIX
#include "depthwise_block.inc"
#undef TVMC_NPIX
  }
#endif
#if TVMC_DW_REST
  {
#define TVMC_NPIX TVMC_DW_REST
#include "depthwise_block.inc"
#undef TVMC_NPIX
  }
#endif
  (void)c;
  return 0;
}

#undef TVMC_DW_OFFSET
#include "tvmc_undef.inc"
