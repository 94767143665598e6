"""`/v1/satkers`: the court tree and each court's calendar overrides."""
