"""Running exported ONNX models as a device does: one onnxruntime session recipe, fair timing.

Shared by the device agent (its smoke test of a model before installing it), by search
(measuring candidates) and by latency-table profiling, so a model is timed the same way
on a server and on a device. It needs onnxruntime and numpy, never torch.
"""
