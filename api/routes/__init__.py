"""The REST API, one module per resource; handlers are thin and call ``Server``."""
