"""Detection per modality: decode, score, judge, draw. Runs in the worker."""
