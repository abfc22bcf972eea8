"""Providers other than the built-in modules: implementations the registry can route methods to.

``remote`` (:mod:`mailroom.providers.remote`) forwards to another mailroom's JSON-RPC
endpoint. Plugins register theirs as ``mailroom.providers`` entry points.
"""
