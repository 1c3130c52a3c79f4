"""Real peers for tests and benchmarks: network namespaces, ipycam, GStreamer, responders."""
