"""Power and thermal: metrics from sensor samples (`metrics`, pure), throttle detection
(`throttle`, pure) and sustained sampled runs on a device (`sustained`)."""
