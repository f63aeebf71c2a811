"""The core layer: what every other layer may use, and which uses nothing of theirs.

- :mod:`segkit.core.errors` — :class:`SegkitError`, the one error for unusable input.
- :mod:`segkit.core.checks` — ``check_scalar``, ``check_columns``: messages that name things.
- :mod:`segkit.core.params` — the parameter schema (every parameter, table spec and metric
  spec, declared once) and :func:`load_params`.
- :mod:`segkit.core.sql` — quoting of identifiers and literals (nothing else quotes SQL).
- :mod:`segkit.core.paths` — bundled files, the reports folder, relative paths.
- :mod:`segkit.core.files` — atomic writes, JSON, sha256.
"""
