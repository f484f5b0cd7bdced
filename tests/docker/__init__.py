"""Tests of the Docker builder, its gateway and the smoke test."""
