"""Pacing, the generation loop and its lifecycle."""
