"""TVM's TFLite operator converter with the gaps that give wrong results closed.

TVM 0.27's `OperatorConverter` is used for every float TFLite model (and by float_lstm.py around its own
LSTM); the subclass here fixes what it converts silently wrong:

* TRANSPOSE_CONV: the schema's newer `fused_activation_function` field (TFLite converters fuse a
  following ReLU/ReLU6 into the op since TRANSPOSE_CONV version 4) is ignored by TVM, so the activation
  was dropped. TFLite Micro applies it to the output, as to any other fused op.
"""

from __future__ import annotations

from typing import Any


def operator_converter() -> type:
    """The converter class (built lazily: importing TVM's frontend is slow)."""
    from tvm.relax.frontend.tflite import tflite_frontend as tf

    class FixedOperatorConverter(tf.OperatorConverter):  # type: ignore[misc]
        def convert_transpose_conv(self, op: Any) -> Any:
            from tflite.TransposeConvOptions import TransposeConvOptions

            out = super().convert_transpose_conv(op)
            raw = op.BuiltinOptions()
            if raw is None:
                return out
            options = TransposeConvOptions()
            options.Init(raw.Bytes, raw.Pos)
            fused = int(options.FusedActivationFunction())
            if fused == 0:  # NONE
                return out
            output = self.get_output_tensors(op)[0]
            if output.qnn_params:
                # The output was quantised by TVM's converter: the activation is a clip of the stored values.
                scale = float(output.qnn_params["scale"].data.numpy())
                zero_point = int(output.qnn_params["zero_point"].data.numpy())
                dtype = self.get_tensor_type_str(output.tensor.Type())
                return self.convert_qnn_fused_activation_function(out, fused, scale, zero_point, dtype)
            return self.convert_fused_activation_function(out, fused)

    return FixedOperatorConverter
