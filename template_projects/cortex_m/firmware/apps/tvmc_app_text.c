/* Text output for the firmware apps: no printf (newlib-nano's has no float, Zephyr's may be off). */
#include <stdint.h>
#include <string.h>

#include "tvmc_app.h"
#include "tvmrt/platform.h"

void tvmc_app_puts(const char* text) { tvmrt_platform_write((const uint8_t*)text, strlen(text)); }

void tvmc_app_put_u64(uint64_t value) {
  char digits[21];
  size_t n = sizeof digits;
  do {
    digits[--n] = (char)('0' + (int)(value % 10u));
    value /= 10u;
  } while (value != 0u);
  tvmrt_platform_write((const uint8_t*)&digits[n], sizeof digits - n);
}

void tvmc_app_put_i64(int64_t value) {
  if (value < 0) {
    tvmc_app_puts("-");
    tvmc_app_put_u64((uint64_t)0 - (uint64_t)value);
  } else {
    tvmc_app_put_u64((uint64_t)value);
  }
}

void tvmc_app_put_hex(uint64_t value, unsigned digits) {
  static const char kHex[] = "0123456789abcdef";
  char out[16];
  if (digits > sizeof out) {
    digits = sizeof out;
  }
  for (unsigned i = 0; i < digits; ++i) {
    out[digits - 1u - i] = kHex[(value >> (4u * i)) & 0xFu];
  }
  tvmrt_platform_write((const uint8_t*)out, digits);
}

/* Powers of ten are exact in a double up to 1e22, which covers every float32 exponent in two steps. */
static double pow10_exact(int n) {
  double p = 1.0;
  while (n-- > 0) {
    p *= 10.0;
  }
  return p;
}

void tvmc_app_put_f32(float value) {
  uint32_t bits;
  memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7F800000u) == 0x7F800000u) {
    tvmc_app_puts((bits & 0x007FFFFFu) ? "nan" : (bits >> 31) ? "-inf" : "inf");
    return;
  }
  if (bits >> 31) {
    tvmc_app_puts("-");
  }
  double v = (double)value;
  if (v < 0) {
    v = -v;
  }
  if (v == 0.0) {
    tvmc_app_puts("0.00000000e+00");
    return;
  }
  /* Scale v into [1e8, 1e9): then its integer part is the 9 significant digits. The double products
     carry ~1e-16 relative error, far below the 5e-9 a 9-digit rounding may be off by while still reading
     back as the same float32. */
  int exp10 = 0;
  while (v >= 1e9) {
    int step = v >= 1e17 ? 8 : 1;
    v /= pow10_exact(step);
    exp10 += step;
  }
  while (v < 1e8) {
    int step = v < 1.0 ? 8 : 1;
    v *= pow10_exact(step);
    exp10 -= step;
  }
  uint64_t m = (uint64_t)(v + 0.5);
  if (m >= 1000000000u) {
    m /= 10u;
    exp10 += 1;
  }
  exp10 += 8;
  char digits[10];
  for (int i = 8; i >= 0; --i) {
    digits[i] = (char)('0' + (int)(m % 10u));
    m /= 10u;
  }
  tvmrt_platform_write((const uint8_t*)digits, 1);
  tvmc_app_puts(".");
  tvmrt_platform_write((const uint8_t*)&digits[1], 8);
  tvmc_app_puts(exp10 < 0 ? "e-" : "e+");
  int e = exp10 < 0 ? -exp10 : exp10;
  if (e < 10) {
    tvmc_app_puts("0");
  }
  tvmc_app_put_u64((uint64_t)e);
}
