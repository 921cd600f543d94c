"""Benchmarks that print numbers: per-stage latency, FPS, cross-process rates."""
