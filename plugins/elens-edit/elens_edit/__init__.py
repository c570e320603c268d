"""elens-edit: the image editor ``region`` (blur, pixelate, black out; CLIPSeg masks)."""
