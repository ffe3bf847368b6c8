"""tvmc for microcontrollers: compile TFLite/ONNX to Model Library Format, build, flash, run, tune."""

__version__ = "0.1.0"
