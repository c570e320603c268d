"""elens-nudenet: the NudeNet detector (shipped ONNX model) as the image check ``nudenet``."""
