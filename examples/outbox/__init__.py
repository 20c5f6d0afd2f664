"""A FastAPI shop that publishes through the transactional outbox: see README.md."""
