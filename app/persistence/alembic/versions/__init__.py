"""Revisions of the run store's schema, in order; never edit one that shipped."""
