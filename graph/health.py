"""`health`: whether the database, Redis and storage answer. Needs no login."""

from __future__ import annotations

import strawberry

from graph.context import Info


@strawberry.type
class BackendHealth:
    name: str
    ok: bool
    backend: str
    error: str | None


@strawberry.type
class Health:
    ok: bool
    backends: list[BackendHealth]


@strawberry.type
class HealthQueries:
    @strawberry.field(description="Whether the database, Redis and object storage answer.")
    async def health(self, info: Info) -> Health:
        checks = await info.context.resources.health()
        backends = [
            BackendHealth(name=name, ok=c["ok"], backend=c["backend"], error=c.get("error"))
            for name, c in checks.items()
        ]
        return Health(ok=all(b.ok for b in backends), backends=backends)
