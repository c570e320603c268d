"""elens-bias: the prompt planner ``people`` and the face audit ``faces``."""
