"""Reads in the approvals app, one module per subdomain."""
