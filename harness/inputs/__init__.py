"""Inputs the suites feed the runner: the input sets pushed to each device (`sets`) and the
test portraits with their derived variants (`portraits`)."""
