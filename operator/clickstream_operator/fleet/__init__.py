"""Talking to generator pods over their HTTP control API."""
