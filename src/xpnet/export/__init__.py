"""Exporting a net for deployment: ONNX model files (`export_onnx`)."""

from .onnx_file import INSTALL_HINT, IR_VERSION, OPSET, export_onnx, onnx_bytes

__all__ = ["INSTALL_HINT", "IR_VERSION", "OPSET", "export_onnx", "onnx_bytes"]
