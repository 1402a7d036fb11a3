"""Alembic migrations of the durable store; ``api.store.migrate.upgrade`` runs them."""
