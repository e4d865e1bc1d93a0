"""Command families, one module each; see registry.COMMAND_MODULES."""
