"""The data layer: models, engine and session factory, repositories."""
