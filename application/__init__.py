"""The application layer: one module per use case, run inside an agent host.

See docs/architecture.md for the picture and the path of a request through it.
"""
