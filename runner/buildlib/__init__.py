"""Declarative parts of runner/build.py: toolchains and third-party build specs.

Every module here is data plus small pure functions; runner/build.py does the fetching,
caching and running. Modules are loaded by path (build.py's `_sibling`), never through
sys.path, so nothing here may import another module of this folder by name.
"""
