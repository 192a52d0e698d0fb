"""A project plugin that raises on import."""

raise RuntimeError("broken plugin: cannot reach the licence server")
