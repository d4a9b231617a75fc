"""The one-command demo and the deterministic fixture warehouse (real symptom data, SIMULATED affect)."""
