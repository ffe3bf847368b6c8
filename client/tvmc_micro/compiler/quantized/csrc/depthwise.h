/* depthwise.h: int8 DEPTHWISE_CONV_2D (multiplier 1, NHWC data, [1, KH, KW, C] weights). A template:
   #define the parameters below, then #include it (one kernel, TVMC_NAME; the parameters are #undef'd at
   the end).

   Output row by output row. Each row first points one pointer per kernel row at its input row, or at a
   row of zero points when that input row is outside the image (vertical padding costs nothing per tap).
   The row's pixels go in blocks of TVMC_DW_PIX: per block 4 channels at a time with SMLABB/SMLATT, each
   tap's weights widened once for every pixel of the block (per tap and 4 channels of a 2-pixel block:
   15 instructions for 8 MACs with the widened weights). The blocks whose pixels read only in-image
   columns run in one loop with no bounds test; the few blocks at the left and right edges are unrolled,
   so their pixel positions are constants and every out-of-image column tap folds at compile time into a
   multiply by the constant zero point (no load, no test). Channels past the last multiple of 4: one by one.

   Parameters (integer constants): TVMC_NAME, TVMC_PARAMS (data, weight, bias, [rq tables,] out);
   TVMC_IH, TVMC_IW, TVMC_CH, TVMC_OH, TVMC_OW, TVMC_KH, TVMC_KW, TVMC_SH, TVMC_SW, TVMC_DH, TVMC_DW,
   TVMC_PT, TVMC_PL, TVMC_IN_ZP; TVMC_DW_WIDE 1 to widen the weights once per call on the stack
   (18 bytes per channel of a 3x3 kernel; needs TVMC_CH >= 4); TVMC_DW_PIX pixels per block;
   TVMC_DW_XL, TVMC_DW_XR: the unrolled left-edge blocks start at columns 0, PIX, ... below XL (XL a
   multiple of PIX, or OW), the loop without bounds tests runs XL .. XR (XR - XL a multiple of PIX, every
   column tap of those pixels inside the image), the unrolled right-edge blocks start at XR, XR + PIX, ...
   below OW (an edge block may be short at the end of the row); TVMC_DW_ZROW 1 when some kernel row of some output row falls outside the image; and the
   requantisation parameters of tvmc_epilogue.inc. */
#include "tvmc_dsp.h"
#include "tvmc_epilogue.inc"
/* The input zero point in all four bytes: the word of an out-of-image tap. */
#define TVMC_DW_ZP4 ((uint32_t)((TVMC_IN_ZP) & 0xff) * 0x01010101u)
/* The word of 4 channels (from c) at tap t of pixel q of the block at ox: the zero-point word when the
   tap's column is outside the image (known at compile time outside the loop without bounds tests). */
#define TVMC_DW_IX(q, t) (((ox) + (q)) * TVMC_SW - TVMC_PL + ((t) % TVMC_KW) * TVMC_DW)
#define TVMC_DW_LOAD(q, t)                                                                   \
  ((TVMC_DW_COLSIN || (TVMC_DW_IX(q, t) >= 0 && TVMC_DW_IX(q, t) < TVMC_IW))                 \
       ? tvmc_ld32(TVMC_DW_ROW((t) / TVMC_KW) + TVMC_DW_IX(q, t) * TVMC_CH + c)                          \
       : TVMC_DW_ZP4)

__attribute__((optimize("no-schedule-insns"))) int32_t TVMC_NAME(TVMC_PARAMS) {
  int32_t oy, ox, c;
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
#if TVMC_DW_ROWBUF
  /* The kernel rows of an output row whose window reaches above or below the image, copied here at the
     image's row stride with zero-point rows in place of the missing ones: every output row then reads
     its taps at constant offsets from one pointer (fewer live registers in the blocks). */
  int8_t rowbuf[(((TVMC_KH - 1) * TVMC_DH + 1) * TVMC_IW * TVMC_CH + 3) / 4 * 4] __attribute__((aligned(4)));
#elif TVMC_DW_ZROW
  /* stands in for an input row above or below the image (the taps of in-image columns read it) */
  int8_t zrow[(TVMC_IW * TVMC_CH + 3) / 4 * 4] __attribute__((aligned(4)));
  memset(zrow, (TVMC_IN_ZP) & 0xff, sizeof(zrow));
#endif
  for (oy = 0; oy < TVMC_OH; ++oy) {
    int8_t* orow = out + oy * (TVMC_OW * TVMC_CH);
    int32_t ky;
#if TVMC_DW_ZROW && !TVMC_DW_ROWBUF
    /* r[ky]: input row oy * SH - PT + ky * DH at column 0 (or the zero-point row) */
    const int8_t* r[TVMC_KH];
    TVMC_UNROLL(16)
    for (ky = 0; ky < TVMC_KH; ++ky) {
      int32_t iy = oy * TVMC_SH - TVMC_PT + ky * TVMC_DH;
      r[ky] = (iy >= 0 && iy < TVMC_IH) ? data + iy * (TVMC_IW * TVMC_CH) : zrow;
    }
#define TVMC_DW_ROW(k) (r[k])
#else
    /* r0: input row oy * SH - PT at column 0 (or its copy), kernel row ky TVMC_DH * ky rows below it */
    const int8_t* r0;
#if TVMC_DW_ROWBUF
    if (oy * TVMC_SH - TVMC_PT < 0 || oy * TVMC_SH - TVMC_PT + (TVMC_KH - 1) * TVMC_DH >= TVMC_IH) {
      TVMC_UNROLL(16)
      for (ky = 0; ky < TVMC_KH; ++ky) {
        int32_t iy = oy * TVMC_SH - TVMC_PT + ky * TVMC_DH;
        int8_t* row = rowbuf + ky * (TVMC_DH * TVMC_IW * TVMC_CH);
        if (iy >= 0 && iy < TVMC_IH)
          memcpy(row, data + iy * (TVMC_IW * TVMC_CH), TVMC_IW * TVMC_CH);
        else
          memset(row, (TVMC_IN_ZP) & 0xff, TVMC_IW * TVMC_CH);
      }
      r0 = rowbuf;
    } else
#endif
      r0 = data + (oy * TVMC_SH - TVMC_PT) * (TVMC_IW * TVMC_CH);
#define TVMC_DW_ROW(k) (r0 + (k) * (TVMC_DH * TVMC_IW * TVMC_CH))
#endif
    (void)ky;
#if TVMC_DW_XL > 0
    TVMC_UNROLL(16)
    for (ox = 0; ox < TVMC_DW_XL; ox += TVMC_DW_PIX) {
#define TVMC_DW_COLSIN 0
#define TVMC_NPIX (TVMC_OW - ox < TVMC_DW_PIX ? TVMC_OW - ox : TVMC_DW_PIX)
#include "depthwise_block.inc"
#undef TVMC_NPIX
#undef TVMC_DW_COLSIN
    }
#endif
#if TVMC_DW_XR > TVMC_DW_XL
    for (ox = TVMC_DW_XL; ox < TVMC_DW_XR; ox += TVMC_DW_PIX) {
#define TVMC_DW_COLSIN 1
#define TVMC_NPIX TVMC_DW_PIX
#include "depthwise_block.inc"
#undef TVMC_NPIX
#undef TVMC_DW_COLSIN
    }
#endif
#if TVMC_DW_XR < TVMC_OW
    TVMC_UNROLL(16)
    for (ox = TVMC_DW_XR; ox < TVMC_OW; ox += TVMC_DW_PIX) {
#define TVMC_DW_COLSIN 0
#define TVMC_NPIX (TVMC_OW - ox < TVMC_DW_PIX ? TVMC_OW - ox : TVMC_DW_PIX)
#include "depthwise_block.inc"
#undef TVMC_NPIX
#undef TVMC_DW_COLSIN
    }
#endif
  }
  (void)ox;
  (void)c;
  return 0;
}

#undef TVMC_DW_ZP4
#undef TVMC_DW_IX
#undef TVMC_DW_LOAD
#undef TVMC_DW_ROW
#include "tvmc_undef.inc"
