"""routing: assigns screened posts to department queues and responders; runs the assignment lifecycle."""
