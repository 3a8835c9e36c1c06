"""Static files of dh-hwcaps, shipped with hwcapdeb for embed mode (not Python code)."""
