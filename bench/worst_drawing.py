"""What the worst drawing the API accepts costs, against a real one: time per guess in process
(digit_predict), time to read the request's strokes, time to build a feedback sample (the guess
plus the stored drawing's PNG), and the bytes a stored sample takes.

The worst accepted drawing (`worst_strokes`): MAX_STROKES strokes holding MAX_KEPT_POINTS
points that simplification cannot drop, each jumping between the corners of the drawing, so
the path is as long as it can be; spread over the 400x400 canvas or over 20,000 px (the
coordinates' whole range, the longest numbers to store). The real drawing is the pen digit
with the most points (185), laid out as the page sends it.

    python -m bench.worst_drawing            # about 30 s on 2 cores
"""

import argparse
import os
import time

import numpy as np

from testing.worst_drawing import stored_bytes, worst_strokes


def per_call_ms(function, repeat: int) -> float:
    function()  # warm
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=50, help="calls timed per figure; the median is printed (default: 50)")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    import django

    django.setup()
    from feedback.services import _sample_build
    from recognizer.fields import StrokesField
    from recognizer.services import digit_predict
    from testing.pendigits_data import layout, load_digits

    field = StrokesField()
    digits = load_digits()
    largest = max(digits, key=lambda d: sum(len(s) for s in d.strokes))
    median = sorted(digits, key=lambda d: sum(len(s) for s in d.strokes))[len(digits) // 2]
    cases = {
        f"pen digit, {sum(len(s) for s in median.strokes)} points": [s.tolist() for s in layout(median, 0)],
        f"pen digit, {sum(len(s) for s in largest.strokes)} points (the largest)": [s.tolist() for s in layout(largest, 0)],
        "worst accepted, over the canvas": worst_strokes(spread=400),
        "worst accepted, over 20,000 px": worst_strokes(spread=19_999.8),
    }
    print(f"{'drawing':42} {'points':>11} {'read ms':>8} {'guess ms':>9} {'sample ms':>10} {'stored bytes (strokes+png+input)':>34}")
    for name, posted in cases.items():
        strokes = field.to_internal_value(posted)
        sample, _ = _sample_build(label=1, image=None, strokes=strokes, client_id=None)
        size = stored_bytes(sample)
        points = f"{sum(map(len, posted))}->{sum(map(len, strokes))}"
        print(
            f"{name:42} {points:>11} {per_call_ms(lambda: field.to_internal_value(posted), args.repeat):8.2f} "
            f"{per_call_ms(lambda: digit_predict(strokes=strokes), args.repeat):9.2f} "
            f"{per_call_ms(lambda: _sample_build(label=1, image=None, strokes=strokes, client_id=None), args.repeat):10.2f} "
            f"{sum(size.values()):>8,} = {size['strokes']:,}+{size['drawing']:,}+{size['model_input']}"
        )


if __name__ == "__main__":
    main()
