"""Credentials and principals."""
