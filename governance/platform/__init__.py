"""Process plumbing every layer may use: settings, logging, metrics, embedded servers, Redis, broker state."""
