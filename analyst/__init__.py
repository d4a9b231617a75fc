"""Analyst SQL: the suppressed analyst store, its locked-down sessions, views, guard and catalogue docs."""
