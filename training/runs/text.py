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


def time_left_text(seconds: float) -> str:
    """A working run's estimate, as rounded as it is rough: "about 40 s left", "about 3 min left"."""
    if seconds < 5:
        return "any moment now"
    if seconds < 90:
        return f"about {max(round(seconds / 10) * 10, 10)} s left"
    return f"about {round(seconds / 60)} min left"


def change_text(before: float | None, after: float | None) -> str:
    """"99.12% → 99.2%", or just the after figure with nothing to compare with."""
    if before is None:
        return percent_text(after)
    return f"{percent_text(before)} → {percent_text(after)}"


def many_text(count: int, noun: str) -> str:
    """"1 correction", "1,204 corrections"."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
