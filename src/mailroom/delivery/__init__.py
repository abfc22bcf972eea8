"""Delivery: turning arriving mail into the metadata the store keeps."""
