"""Local fakes of external services, for tests that must not touch the network."""
