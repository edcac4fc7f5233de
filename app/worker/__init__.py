"""The local worker pool: processes that each execute one run at a time."""
