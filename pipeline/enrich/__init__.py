"""Enrichment of validated posts: recognition, masking, language, sentiment and category."""
