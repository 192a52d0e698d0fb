"""An entry point whose import fails, as a plugin with a missing dependency would."""

raise ImportError("example_broken needs the 'nonexistent_sdk' package")
