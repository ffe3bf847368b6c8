/* conv.h: int8 CONV_2D (groups == 1, NHWC data, OHWI weights) as a matrix multiply over an int16 patch.
   A template: #define the parameters below, then #include it; each inclusion defines one kernel
   (TVMC_NAME) and #undefs the parameters again.

   Each block of TVMC_CONV_PIX output pixels first widens its receptive fields into the workspace (int16 in
   SXTB16 order: bytes 0,2 then 1,3 of every 4-tap group; out-of-image taps read the input zero point),
   then computes 2 output channels x the block's pixels at a time with SMLAD (per 4 taps of a 3-pixel
   block: 2 weight loads, 4 SXTB16, 3 LDRD of patch words and 12 SMLAD for 24 MACs; the workspace must be
   4-byte aligned, as arena tensors are), and requantises channel by channel (tvmc_epilogue.inc). A 1x1
   unpadded conv widens straight from the input.

   Parameters (all integer constants):
     TVMC_NAME, TVMC_PARAMS     symbol and parameter list: data, weight, bias, [rq tables,] out, ws
     TVMC_IH, TVMC_IW, TVMC_IC  input; TVMC_OH, TVMC_OW, TVMC_OC output; TVMC_KH, TVMC_KW kernel
     TVMC_SH, TVMC_SW, TVMC_DH, TVMC_DW, TVMC_PT, TVMC_PL  stride, dilation, top/left padding
     TVMC_IN_ZP                 input zero point
     TVMC_CONV_K                taps per output (KH * KW * IC)
     TVMC_CONV_KB               taps the blocks run: TVMC_CONV_K, or K rounded up to 4 (TVMC_CONV_PAD_K)
     TVMC_CONV_ROW              int16 elements per pixel of the patch (KB rounded up to 2)
     TVMC_CONV_PATCH            TVMC_CONV_DIRECT (1x1, no padding: widen from the input),
                                TVMC_CONV_ROWS (kernel rows of whole 4-tap groups widened from the input
                                where they lie inside the image) or TVMC_CONV_BYTES (assemble, then widen)
     TVMC_CONV_PAD_K            1: K padded with zero taps against zero weights (a copy of the weights)
     TVMC_CONV_WEIGHT_HWO       1: weights arrive [KH, KW, OC] (a one-input-channel depthwise layer)
     TVMC_CONV_WK_OFFSET        byte offset in ws of that weight copy
     TVMC_CONV_PIX              pixels per full block; TVMC_CONV_FULL pixels in full blocks,
                                TVMC_CONV_REST pixels in the tail block
     TVMC_CONV_UNROLL_FULL, TVMC_CONV_UNROLL_TAIL  4-tap groups per chunk of K in full / tail blocks
                                (a divisor of the group count; all of them: K fully unrolled)
     TVMC_CONV_WIDE_W           1: `weight` is int16, widened at compile time (--kernel-weights int16;
                                KB a multiple of 4, zero-padded and [OC, KB] already): per 4-tap group
                                and channel pair, both channels' SXTB16-order words side by side
                                (c0 taps 0,2 | c0 taps 1,3 | c1 taps 0,2 | c1 taps 1,3; an odd last
                                channel alone), so each channel's group is one LDRD and no SXTB16
                                (per 4 taps of a 3-pixel block: 5 LDRD and 12 SMLAD for 24 MACs)
     and the requantisation parameters of tvmc_epilogue.inc. */
#include "tvmc_dsp.h"
#define TVMC_CONV_DIRECT 1
#define TVMC_CONV_ROWS 2
#define TVMC_CONV_BYTES 3
#include "tvmc_epilogue.inc"
#if TVMC_CONV_WIDE_W && TVMC_CONV_KB % 4
#error "TVMC_CONV_WIDE_W needs TVMC_CONV_KB a multiple of 4"
#endif

__attribute__((optimize("no-schedule-insns"))) int32_t TVMC_NAME(TVMC_PARAMS) {
#if TVMC_CONV_WIDE_W
  /* laid out at compile time: no per-call copy */
  const int16_t* wk = weight;
#elif TVMC_CONV_WEIGHT_HWO || TVMC_CONV_PAD_K
  /* Each call first lays the weights out as the [OC, KB] rows the blocks read (zero-padded to KB). */
  int8_t* wk = (int8_t*)ws + TVMC_CONV_WK_OFFSET;
#endif
#if TVMC_CONV_PAD_K
  /* the patch's pad taps (the blocks assemble only the first K bytes) */
  memset((int8_t*)(ws + TVMC_CONV_PIX * TVMC_CONV_ROW) + TVMC_CONV_K, 0, TVMC_CONV_KB - TVMC_CONV_K);
#endif
#if !TVMC_CONV_WIDE_W && (TVMC_CONV_WEIGHT_HWO || TVMC_CONV_PAD_K)
  {
    int32_t c, t;
    for (c = 0; c < TVMC_OC; ++c)
      for (t = 0; t < TVMC_CONV_KB; ++t)
#if TVMC_CONV_WEIGHT_HWO
        wk[c * TVMC_CONV_KB + t] = t < TVMC_CONV_K ? weight[t * TVMC_OC + c] : 0;
#else
        wk[c * TVMC_CONV_KB + t] = t < TVMC_CONV_K ? weight[c * TVMC_CONV_K + t] : 0;
#endif
  }
#elif !TVMC_CONV_WIDE_W
  const int8_t* wk = weight;
#endif
  int32_t pix = 0;
#if TVMC_CONV_FULL
  for (; pix < TVMC_CONV_FULL; pix += TVMC_CONV_PIX) {
#define TVMC_NPIX TVMC_CONV_PIX
#define TVMC_KUNROLL TVMC_CONV_UNROLL_FULL
#include "conv_block.inc"
#undef TVMC_NPIX
#undef TVMC_KUNROLL
  }
#endif
#if TVMC_CONV_REST
  {
#define TVMC_NPIX TVMC_CONV_REST
#define TVMC_KUNROLL TVMC_CONV_UNROLL_TAIL
#include "conv_block.inc"
#undef TVMC_NPIX
#undef TVMC_KUNROLL
  }
#endif
  return 0;
}

#include "tvmc_undef.inc"
