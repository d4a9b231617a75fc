"""Outbreak detectors working on (series x time) matrices; the public entry point is analytics.detect."""
