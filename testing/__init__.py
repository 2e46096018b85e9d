"""Helpers the tests and the benchmarks share: starting the site (server), driving the page in
headless Chromium (browser), the real pen digits laid out on the canvas (pendigits_data), and the
worst drawing the API accepts (worst_drawing). Neither product code nor tests import bench."""
