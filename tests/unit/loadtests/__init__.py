"""Unit tests of the load-test tooling's pure logic."""
