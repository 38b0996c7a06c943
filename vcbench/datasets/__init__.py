"""Benchmark sets (benchmarks.py) and the build-dataset pipeline (sources, clips, augment, shards, manifest, pipeline)."""
