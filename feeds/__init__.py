"""Alert feeds: the Gaia Science Alerts list (`alerts.csv`) and TNS CSV exports, read into the
alerts table by the `flask alert import-csv` command and kept in sync by a Celery beat task."""
