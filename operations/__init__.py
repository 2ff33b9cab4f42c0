"""Care operations from the prediction store: the KPI report, the peak forecast, drift and the demo store."""
