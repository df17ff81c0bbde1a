"""policy: screens inbound posts and (later) checks outbound replies against a versioned policy pack."""
