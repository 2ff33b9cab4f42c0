"""Serving: the BentoML classifier and router services, routing rules and the feedback store."""
