"""Benchmarks of scsiameseclu on the labelled datasets in ../shared/data (not part of the tests)."""
