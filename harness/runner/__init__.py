"""Running the C++ runner on a device (`invoke`), its telemetry (`telemetry`) and A/B
interleaved runs of two builds (`ab`)."""
