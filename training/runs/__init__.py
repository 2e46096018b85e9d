"""What the admin reads of a run, no torch: the typed decision and its words, the run page's
presentation, the report, a working run's progress, and the selectors."""
