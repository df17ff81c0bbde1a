"""policy: screens inbound posts and checks outbound replies against the active, versioned policy pack."""
