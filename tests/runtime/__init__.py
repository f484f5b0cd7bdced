"""Tests of custom-runtime layers and the local Runtime API."""
