"""The ONNX opset every exported model and every timed layer graph uses.

Its own module because devices build layer graphs (to measure their latency tables)
without torch, which `core.export` needs.
"""

OPSET = 17
