"""Blob stores for dataset files: a local folder (default) and Azure Blob Storage."""
