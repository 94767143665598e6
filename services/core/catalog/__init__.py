"""The SOP catalog: loading and validating the YAML files, storing and serving versions."""
