"""A device farm in one run (pytest-xdist, docs/fleet.md).

  scopes      which worker scope each device's tests belong to (pure)
  health      a device's connection health: connects, drops, retries, offline (pure)
  controller  the pytest-xdist side: one worker scope per device, the controller owns the
              run (workers journal into it, the controller merges), `-n auto`
  retry       reconnect a dropped device once and retry its test, then offline
"""
