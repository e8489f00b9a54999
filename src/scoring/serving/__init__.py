"""The exported model: an MLflow pyfunc defined from code, loading only JSON and UBJSON files."""
