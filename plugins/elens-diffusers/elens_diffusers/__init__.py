"""elens-diffusers: the generation backend ``diffusers``."""
