"""layerbuild's tests."""
