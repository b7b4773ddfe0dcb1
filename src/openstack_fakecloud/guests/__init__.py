"""Guests: real software (a PostgreSQL server) running inside fakecloud's servers, reachable at their addresses."""
