"""Run history: the SQLite store (`store`), which run a --baseline spec names
(`baseline`) and the comparison of runs with its gate (`compare`)."""
