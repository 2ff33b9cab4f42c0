"""Speed and endurance of the served endpoint: the bench (bench.py) and the soak test (soak.py)."""
