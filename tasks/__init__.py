"""Job functions, their registry, the progress reporter and arq worker settings."""
