"""elens-text: model-based text checks that run offline on a CPU."""
