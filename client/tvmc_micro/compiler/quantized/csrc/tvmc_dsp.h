/* tvmc_dsp.h: static inline helpers of the tvmc_micro int8 micro-kernels (the csrc templates).

   DSP intrinsics (SXTB16, SXTAB16, SMLAD, SMLABB/SMLATT, SSAT) when the compiler targets a core with the
   Armv7E-M DSP extension (__ARM_FEATURE_DSP), and portable C twins otherwise, so the same kernel built for
   the host computes bit for bit what the Cortex-M build computes; TFLite's requantisation
   (MultiplyByQuantizedMultiplier) in two exact forms; saturation and clamping.

   ckernels.py pastes this header once at the top of the generated kernels (then every kernel template
   that includes it finds it already there). */
#ifndef TVMC_DSP_H
#define TVMC_DSP_H
#include <stdint.h>
#include <string.h>
/* Token pasting (per-kernel names of the templates' helpers) and `#pragma GCC unroll N` from a macro. */
#define TVMC_CAT_(a, b) a##b
#define TVMC_CAT(a, b) TVMC_CAT_(a, b)
#define TVMC_PRAGMA_(x) _Pragma(#x)
#define TVMC_UNROLL(n) TVMC_PRAGMA_(GCC unroll n)
/* Requantisation modes of the kernel templates (TVMC_RQ_MODE, see tvmc_epilogue.inc). */
#define TVMC_RQ_FIXED 1
#define TVMC_RQ_TABLE 2
#define TVMC_RQ_EXACT 3
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
static inline int32_t tvmc_sxtb16(uint32_t x) { return (int32_t)__sxtb16((int8x4_t)x); }
/* SXTB16 with its free ROR #8 operand (GCC would emit a separate rotate). */
static inline int32_t tvmc_sxtb16_ror8(uint32_t x) {
  int32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}
static inline int32_t tvmc_smlad(int32_t a, int32_t b, int32_t acc) {
  return __smlad((int16x2_t)a, (int16x2_t)b, acc);
}
static inline int32_t tvmc_smlabb(int32_t a, int32_t b, int32_t acc) { return __smlabb(a, b, acc); }
static inline int32_t tvmc_smlatt(int32_t a, int32_t b, int32_t acc) { return __smlatt(a, b, acc); }
#else
/* Portable twins: same lanes, same wrap-around int32 accumulation. */
static inline int32_t tvmc_sxtb16(uint32_t x) {
  uint32_t lo = (uint32_t)(uint16_t)(int16_t)(int8_t)(uint8_t)(x & 0xffu);
  uint32_t hi = (uint32_t)(uint16_t)(int16_t)(int8_t)(uint8_t)((x >> 16) & 0xffu);
  return (int32_t)(lo | (hi << 16));
}
static inline int32_t tvmc_sxtb16_ror8(uint32_t x) { return tvmc_sxtb16((x >> 8) | (x << 24)); }
static inline int32_t tvmc_lo16(int32_t a) { return (int32_t)(int16_t)(uint16_t)((uint32_t)a & 0xffffu); }
static inline int32_t tvmc_hi16(int32_t a) { return (int32_t)(int16_t)(uint16_t)((uint32_t)a >> 16); }
static inline int32_t tvmc_smlad(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(tvmc_lo16(a) * tvmc_lo16(b)) +
                   (uint32_t)(tvmc_hi16(a) * tvmc_hi16(b)));
}
static inline int32_t tvmc_smlabb(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(tvmc_lo16(a) * tvmc_lo16(b)));
}
static inline int32_t tvmc_smlatt(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(tvmc_hi16(a) * tvmc_hi16(b)));
}
#endif
static inline uint32_t tvmc_ld32(const void* p) { uint32_t v; memcpy(&v, p, 4); return v; }
/* TVMC_LD2(base, off, lo, hi): the two words at byte offset off (a multiple of 4) of a 4-byte aligned
   base into the int32_t lvalues lo and hi: one LDRD on the DSP cores where off is a compile-time constant
   in LDRD's immediate range (+-1020), two LDRs otherwise. GCC splits a plain 64-bit load into two LDRs,
   and an "m" operand made it hoist every address into a spilled register (or keep the buffer's pointer
   live), so the LDRD is a volatile asm without a memory operand: the caller puts TVMC_LD2_FENCE() between
   the stores filling the buffer and these loads, and again between these loads and the next stores to
   the buffer (volatile asms keep their order, and the fence's memory clobber keeps stores on their side
   of it). The caller guarantees the alignment: LDRD faults on an unaligned address. */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define TVMC_LD2(base, off, lo, hi)                                                                   \
  do {                                                                                              \
    if (__builtin_constant_p(off) && (off) >= -1020 && (off) <= 1020) {                             \
      int32_t a_, b_;                                                                               \
      __asm__ volatile("ldrd %0, %1, [%2, %3]"                                                      \
                       : "=r"(a_), "=r"(b_)                                                         \
                       : "r"(base), "n"(__builtin_constant_p(off) ? (off) : 0));                    \
      (lo) = a_;                                                                                    \
      (hi) = b_;                                                                                    \
    } else {                                                                                        \
      (lo) = (int32_t)tvmc_ld32((const int8_t*)(base) + (off));                                     \
      (hi) = (int32_t)tvmc_ld32((const int8_t*)(base) + (off) + 4);                                 \
    }                                                                                               \
  } while (0)
#define TVMC_LD2_FENCE() __asm__ volatile("" ::: "memory")
#else
#define TVMC_LD2(base, off, lo, hi)                                \
  do {                                                           \
    (lo) = (int32_t)tvmc_ld32((const int8_t*)(base) + (off));     \
    (hi) = (int32_t)tvmc_ld32((const int8_t*)(base) + (off) + 4); \
  } while (0)
#define TVMC_LD2_FENCE() ((void)0)
#endif
/* TFLite's MultiplyByQuantizedMultiplier(acc, mult, left - right) for 0 <= mult < 2^31 (QuantizeMultiplier's
   output). SaturatingRoundingDoublingHighMul is h = floor((x * mult + 2^30) / 2^31): its nudge and
   truncating division agree with that floor for both signs, and its one saturating case needs
   mult == INT32_MIN. RoundingDivideByPOT(h, e >= 1) rounds half away from zero:
   floor((h + 2^(e-1) - [h < 0]) / 2^e) = ((((h + (h >> 31)) >> (e - 1)) + 1) >> 1), nothing overflows
   because |h| <= 2^31 - 2. One SMLAL and five ALU operations instead of TFLite's branchy sequence. */
static inline int32_t tvmc_rq(int32_t acc, int32_t mult, int32_t left, int32_t right) {
  int32_t x = (int32_t)((uint32_t)acc << left);
  int32_t h = (int32_t)(((int64_t)x * mult + ((int64_t)1 << 30)) >> 31);
  if (right <= 0) return h;
  return (((h + (h >> 31)) >> (right - 1)) + 1) >> 1;
}
/* tvmc_rq(acc, mult, 0, e) + zp in one SMLAL, for 2 <= e <= 22 and mult == 0 or 2^30 <= mult < 2^31.
   RoundingDivideByPOT(h, e) = floor((h + 2^(e-1) - [h < 0]) / 2^e) and h = floor((acc*mult + 2^30) / 2^31)
   nest into one floor: floor((acc*mult + 2^30 + 2^(30+e) - 2^31*[h < 0] + zp*2^(31+e)) / 2^(31+e)).
   For such a mult, [h < 0] may be replaced by [acc < 0] (they differ only for acc == -1, mult == 2^30,
   where both give 0). The addend's low word is 2^30 - 2^31*[acc < 0] (bit 31 of acc, borrow into the
   high word); its high word khi = 2^(e-2) + zp*2^(e-1) is a per-channel constant, and
   floor(q / 2^(31+e)) = (q >> 32) >> (e-1), so sh = e - 1. |q| < 2^63 for e <= 22, so nothing wraps. */
static inline int32_t tvmc_rqz(int32_t acc, int32_t mult, int32_t khi, int32_t sh) {
  uint32_t lo = ((uint32_t)acc & 0x80000000u) | 0x40000000u;
  int32_t hi = khi + (acc >> 31);
  int64_t q = (int64_t)(((uint64_t)(uint32_t)hi << 32) | lo) + (int64_t)acc * mult;
  return (int32_t)(q >> 32) >> sh;
}
/* (m, e) inside tvmc_rqz's domain: 2 <= e <= 22 and m == 0 or 2^30 <= m < 2^31. */
#define TVMC_RQZ_OK(m, e) ((uint32_t)((e) - 2) <= 20u && ((m) == 0 || (m) >= 0x40000000))
/* Requantise with any per-channel (m, right shift e) and add zp: tvmc_rqz inside its domain, else tvmc_rq. */
/* tvmc_rq(acc, m, 0, e) + zp out of line: the rare branch of a per-channel block, kept from crowding the
   hot loop's registers. */
__attribute__((noinline, cold, unused)) static int32_t tvmc_rq_cold(int32_t acc, int32_t m, int32_t e,
                                                                   int32_t zp) {
  return tvmc_rq(acc, m, 0, e) + zp;
}
static inline int32_t tvmc_rqe(int32_t acc, int32_t m, int32_t e, int32_t zp) {
  if (TVMC_RQZ_OK(m, e)) return tvmc_rqz(acc, m, (int32_t)((uint32_t)(2 * zp + 1) << (e - 2)), e - 1);
  return tvmc_rq(acc, m, 0, e) + zp;
}
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* SXTAB16: acc's two 16-bit lanes plus bytes 0 and 2 of x, sign-extended (no carry between lanes). */
static inline int32_t tvmc_sxtab16(int32_t acc, uint32_t x) {
  return (int32_t)__sxtab16((int16x2_t)acc, (int8x4_t)x);
}
static inline int32_t tvmc_sxtab16_ror8(int32_t acc, uint32_t x) {
  int32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(x));
  return r;
}
#else
static inline int32_t tvmc_sxtab16(int32_t acc, uint32_t x) {
  uint32_t lo = ((uint32_t)acc + (uint32_t)(int32_t)(int8_t)(uint8_t)(x & 0xffu)) & 0xffffu;
  uint32_t hi = (((uint32_t)acc >> 16) + (uint32_t)(int32_t)(int8_t)(uint8_t)((x >> 16) & 0xffu)) & 0xffffu;
  return (int32_t)(lo | (hi << 16));
}
static inline int32_t tvmc_sxtab16_ror8(int32_t acc, uint32_t x) {
  return tvmc_sxtab16(acc, (x >> 8) | (x << 24));
}
#endif
static inline int8_t tvmc_sat8(int32_t v) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  return (int8_t)__ssat(v, 8);
#else
  return (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
#endif
}
/* TFLite's average: the sum divided by the tap count, rounding half away from zero. */
static inline int32_t tvmc_avg(int32_t s, int32_t cnt) {
  return s > 0 ? (s + cnt / 2) / cnt : (s - cnt / 2) / cnt;
}
static inline int8_t tvmc_clamp8(int32_t v, int32_t lo, int32_t hi) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  v = __ssat(v, 8);
#endif
  return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

#endif /* TVMC_DSP_H */
