"""Unit tests of the contract engine: no servers, no network."""
