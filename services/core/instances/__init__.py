"""Running SOPs: instances, their tasks, and the transitions that move them."""
