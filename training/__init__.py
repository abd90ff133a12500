"""Fogline training pipeline: hybrid (edge/cloud) ResNet-32, QAT, calibration, ONNX export.

``python -m training --help`` lists the commands (training/__main__.py)."""
