"""A small example module for trying Tandem (see README)."""


def mean(values: list[float]) -> float:
    """The arithmetic mean of a non-empty list."""
    return sum(values) / len(values)


def variance(values: list[float]) -> float:
    """The population variance."""
    m = mean(values)
    return sum((v - m) ** 2 for v in values) / len(values)


def fibonacci(n: int) -> int:
    """The n-th Fibonacci number."""
    if
