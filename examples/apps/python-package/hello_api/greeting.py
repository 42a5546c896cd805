"""A module of the package, imported by main.py."""


def greeting() -> str:
    return "Hello from GoldenPath"
