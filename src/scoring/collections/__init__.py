"""Collections: delinquency grading and roll forecasts on the performance history, and the
behaviour score's account-month data (issue 16, in progress)."""
