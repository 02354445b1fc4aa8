"""The files of an export: their paths, written by the exporter and read by the checks and readers."""

FORMAT = "bqx-export"
FORMAT_VERSION = 1
MARKER = "metadata/COMPLETE.json"
EXPORT_JSON = "metadata/export.json"
CATALOG_JSON = "metadata/catalog.json"
VALIDATION_JSON = "metadata/validation.json"
FILES_JSON = "metadata/files.json"
CHECKS_JSON = "metadata/checks.json"
COLUMNS_JSON = "metadata/columns.json"
SCALER_JSON = "scalers/scaler.json"
TOP_DIRS = ("features/", "scalers/", "metadata/")
