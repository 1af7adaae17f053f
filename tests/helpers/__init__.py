"""Helpers of SwapLab's own tests (fixtures stay in conftest.py):

- `paths`: REPO, the checkout under test
- `git`: one way to run git in a throwaway repository
- `records`: run records and run folders built from synthetic measurements
- `lab`: a stand-in swap_runner and pytest runs in a subprocess
"""
