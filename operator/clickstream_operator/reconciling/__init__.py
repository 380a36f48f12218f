"""Desired versus actual: what each generator pod should be doing, and the status."""
