"""Small utilities that know nothing of clicks, sinks or engines."""
