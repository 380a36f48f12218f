"""The click model of an imaginary web store, its configuration and its events."""
