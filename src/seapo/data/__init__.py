"""Data ingestion: any supported source -> normalized records (see docs/formats.md)."""
