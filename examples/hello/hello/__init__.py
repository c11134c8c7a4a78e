"""A greeting, configurable through the GREETING environment variable."""

import os


def greet(name: str) -> str:
    greeting = os.environ.get("GREETING", "Hello")
    return f"{greeting}, {name.strip() or 'world'}!"
