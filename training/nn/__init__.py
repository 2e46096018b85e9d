"""Training's torch core, no Django: the data as tensors, augmentation, the negatives, the loop
(`trainer.fit`) and reading with a net (`inference`). Every number of the recipe comes in from
the caller (training.options.RunOptions, through training.steps)."""
