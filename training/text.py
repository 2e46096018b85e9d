"""How figures read in the run log and on the admin's pages."""


def percent_text(value: float | None) -> str:
    """An accuracy as the run log and the admin show it; "–" when there was nothing to measure."""
    if value is None:
        return "–"
    text = f"{value * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def count_text(value: float | None, count: int) -> str:
    """"75% of 4": an accuracy with the count it was measured on."""
    if not count:
        return "none held out"
    if value is None:
        return "–"
    return f"{percent_text(value)} of {count:,}"
