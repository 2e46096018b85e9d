"""What a drawing can be: a digit 0-9, or not a digit at all (a letter, a scribble, a shape).

The network has one output per class, digits first, then NOT_A_DIGIT; the database stores a
sample's label and guess as these same numbers. Plain constants, no torch: web processes read them.
"""

DIGITS = range(10)
NOT_A_DIGIT = 10  # the class, and the stored label, of a drawing that is not a digit
CLASSES = 11  # digits, then "not a digit"
NOT_A_DIGIT_LABEL = "not_a_digit"  # how the APIs spell it (a predict reason; a feedback label)


def label_text(label: int) -> str:
    """How a person reads a stored label or guess: "7", or "not a digit"."""
    return "not a digit" if label == NOT_A_DIGIT else str(label)
