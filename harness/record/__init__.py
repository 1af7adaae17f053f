"""The run record: the record file (`run_record`), measurements going into it
(`recorder`), the run's environment (`environment`) and units (`units`)."""
