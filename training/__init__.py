"""Fogline training pipeline: hybrid (edge/cloud) ResNet-32, QAT, calibration, ONNX export."""
