"""Constant tables of TFLite's int16 activation kernels, computed at import time as TFLite Micro does.

- `SIGMOID_TABLE_UINT16`: TFLite's 256-entry sigmoid table shared by the int16 LOGISTIC and TANH
  kernels (`sigmoid_table_uint16` in tensorflow/lite/kernels/internal/common.h: sigmoid(i / 24) in 0.16
  format, hand-tuned by TFLite so no closed formula reproduces every entry; the values are data).
- `softmax_exp_lut` / `softmax_reciprocal_lut`: the two 513-entry int16 tables TFLM's SOFTMAX Prepare()
  fills with LUTPopulate<int16_t> (exp on [-10, 0], 1 / (1 + x) on [0, 1]), in float32 arithmetic step
  by step as the C++ evaluates it, so the tables are the ones the interpreter builds.
- `logistic_tanh_rescale`: the input multiplier and shift of the int16 LOGISTIC / TANH Prepare().
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

# fmt: off
SIGMOID_TABLE_UINT16 = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794,
    41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443,
    48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169, 53581, 53983, 54374,
    54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433, 57724, 58007, 58280, 58544,
    58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110, 61279,
    61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990,
    63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030,
    64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652,
    64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019,
    65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234,
    65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360,
    65367, 65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476,
    65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498, 65500, 65501,
    65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516,
    65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529,
    65529, 65530, 65530, 65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532,
    65532, 65532, 65532, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65534, 65534,
    65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
], np.uint16)
# fmt: on

_F32 = np.float32
_INT16_RANGE = 65535  # numeric_limits<int16_t>::max() - min()


def _round_f32(x: np.float32) -> np.float32:
    """roundf: to nearest, ties away from zero (x - trunc(x) is exact in float32)."""
    t = np.trunc(x)
    if abs(x - t) >= _F32(0.5):
        t = t + (_F32(1.0) if x > 0 else _F32(-1.0))
    return _F32(t)


def _lut_populate_int16(
    input_scale: np.float32,
    input_zero_point: int,
    output_scale: np.float32,
    output_zero_point: int,
    transform: Callable[[np.float32], np.float32],
) -> np.ndarray:
    """LUTPopulateInt16<float>: 512 samples with the midpoint interpolation error halved into each, plus
    the end point; every operation in float32, in the C++ order."""
    input_min = input_scale * _F32(-32768 - input_zero_point)
    input_max = input_scale * _F32(32767 - input_zero_point)
    output_min = output_scale * _F32(-32768 - output_zero_point)
    output_max = output_scale * _F32(32767 - output_zero_point)
    steps = 512
    step = (input_max - input_min) / _F32(steps)
    half_step = step / _F32(2)
    inv = _F32(65536) / (output_max - output_min)
    lut = np.zeros(steps + 1, np.int16)

    def clamp(v: np.float32) -> int:
        return int(min(max(v, _F32(-32768)), _F32(32767)))

    for i in range(steps):
        at = input_min + _F32(i) * step
        val = transform(at)
        val_mid = transform(at + half_step)
        val_next = transform(input_min + _F32(i + 1) * step)
        sample = _round_f32(val * inv)
        interp = _round_f32((val_next * inv + _round_f32(val * inv)) / _F32(2))
        mid = _round_f32(val_mid * inv)
        bias = _round_f32((interp - mid) / _F32(2))
        lut[i] = clamp(sample - bias)
    lut[steps] = clamp(_round_f32(transform(input_max) * inv))
    return lut


def _expf(x: np.float32) -> np.float32:
    # exp in double rounded to float: the correctly rounded expf (glibc's is, to within 0.502 ULP).
    return _F32(math.exp(float(x)))


def _one_over_one_plus(x: np.float32) -> np.float32:
    return _F32(1.0) / (_F32(1.0) + x)


def softmax_exp_lut() -> np.ndarray:
    """exp(x) for x in [-10, 0] (input zero point 32767), output scale 2 / 65535."""
    return _lut_populate_int16(
        _F32(10.0) / _F32(_INT16_RANGE), 32767, _F32(2.0) / _F32(_INT16_RANGE), 0, _expf
    )


def softmax_reciprocal_lut() -> np.ndarray:
    """1 / (1 + x) for x in [0, 1] (input zero point -32768), output scale 2 / 65535."""
    return _lut_populate_int16(
        _F32(1.0) / _F32(_INT16_RANGE), -32768, _F32(2.0) / _F32(_INT16_RANGE), 0, _one_over_one_plus
    )


def checked_log2(x: float) -> int | None:
    """CheckedLog2: the rounded log2 of a float32 scale when it is within 1e-3 of an integer, else None."""
    x_log2 = _F32(math.log(float(_F32(x)))) * (_F32(1.0) / _F32(math.log(2.0)))
    rounded = _round_f32(_F32(x_log2))
    return int(rounded) if abs(_F32(x_log2) - rounded) < _F32(1e-3) else None


def logistic_tanh_rescale(input_scale: float, tanh: bool) -> tuple[int, int]:
    """(input_multiplier, input_left_shift) as the kernel uses them: a power-of-two input scale that
    TFLite handles exactly (2^-12 for LOGISTIC; 2^-12 or 2^-11 for TANH) gives (3 << shift, 0); any
    other scale the multiplier that maps the input to 1 / (3 * 4096) units, truncated, and its shift."""
    log2 = checked_log2(input_scale)
    if log2 is not None:
        shift = 12 + log2  # (15 - kInputIntegerBits) + log2(scale)
        if shift == 0 or (tanh and shift == 1):
            return 3 << shift, 0
    multiplier = float(_F32(input_scale)) * 4096.0 * 3.0
    shift = 0
    while multiplier <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        multiplier *= 2.0
    return int(multiplier), shift
