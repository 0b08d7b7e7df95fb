"""The contract plugins build on: the hook specifications, the interfaces of backends and
transcribers, profiles, result models and helpers for encoders. Imports only the ground floor
(`errors`, `settings`)."""
