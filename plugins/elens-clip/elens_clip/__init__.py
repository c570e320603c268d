"""elens-clip: the image check ``clip-concepts`` (open_clip)."""
