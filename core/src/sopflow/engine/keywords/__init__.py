"""Keyword rules: words in customers' messages add or remove tags and set
fields.  Builds on ``customers``."""
