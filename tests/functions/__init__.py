"""Tests of the function side: attach, versions, aliases, releases."""
