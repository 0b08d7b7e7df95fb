"""Built-in plugins, loaded through the same plugin manager as external ones."""
