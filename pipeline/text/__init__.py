"""Text utilities shared by validation and enrichment: normalisation, PII masking, language, matching."""
