"""Heat (orchestration): a HOT engine whose resources are real fakecloud servers, volumes and groups."""
