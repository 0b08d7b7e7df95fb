"""Plugins: the manager (built-ins and entry points), the registries of what they registered,
lookups (profile -> backend, classifier kinds, transcriber) and consent for restricted backends."""
