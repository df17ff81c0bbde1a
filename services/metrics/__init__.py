"""metrics: consumes every topic, keeps each event once, and serves timelines and timeliness numbers."""
