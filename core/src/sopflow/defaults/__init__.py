"""Built-in behaviour, written as plugins so a deployment can override it."""
