"""ingest: accepts posts over REST, stores them once, and publishes posts.received.v1 through its outbox."""
