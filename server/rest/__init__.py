"""REST routes: the seed's /api/v1 adapters, signed file downloads, the OpenAI-compatible API."""
