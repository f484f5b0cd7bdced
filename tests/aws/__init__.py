"""Tests of publishing to S3 and Lambda, against a moto server."""
