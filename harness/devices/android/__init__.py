"""Android devices over adb (adbutils): real phones, emulators, remote adb servers and
SwapLab's own virtual device.

- :mod:`.device`    the Device backend (discover(), AndroidDevice)
- :mod:`.parsers`   pure parsers of what a phone prints (getprop, thermal zones, battery)
- :mod:`.sampler`   the on-device sensor sampler (one shell loop, parsed on the host)
- :mod:`.preflight` checks before measuring: battery, charging, thermal state
"""
