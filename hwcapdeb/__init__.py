"""hwcapdeb: build, verify and benchmark glibc-hwcaps variants of Debian libraries."""

__version__ = "0.1.0"

#: Version of every JSON document the CLI prints (top-level "version" key).
JSON_FORMAT_VERSION = 1
