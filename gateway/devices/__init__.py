"""Device identity: the registry of terminals, their broker credentials and the broker's
password file and ACL made from it, the intake's own check of who is talking, and each
device's budgets (`limits.py`)."""
