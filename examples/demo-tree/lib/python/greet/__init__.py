"""A module served from CernVM-FS."""


def greet(name: str) -> str:
    return f"Hello, {name}, from a module on /cvmfs!"
