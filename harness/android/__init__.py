"""Android specifics of SwapLab: output parsers, the on-device sampler, measurement gates."""
