"""Settings: the scoped store, typed values and the settings iPXE predefines or computes."""
