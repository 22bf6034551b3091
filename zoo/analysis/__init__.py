"""Analysis tools: effective receptive field, dead pixel test, contrast robustness, NaN hazards,
and the guideline audit. Heavy imports (scipy, matplotlib, PIL) happen inside the functions."""
