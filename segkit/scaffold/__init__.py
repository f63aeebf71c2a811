"""A first parameter file from an unknown file, for ``segkit init --from FILE``.

- :mod:`segkit.scaffold.infer` — the shape of a file (transaction log, customer table,
  experiment) and the roles of its columns, read with segkit's own reader (:mod:`segkit.io`);
- :mod:`segkit.scaffold.guess` — the choices built on segkit's own rules (outcomes,
  features and their preparation from :mod:`segkit.segment`, the control arm from
  :mod:`segkit.abtest`): the value column, integer codes that are categories.

It sits above :mod:`segkit.io` in the library layer because it uses the clustering and A/B
rules; the written ``params.yaml`` is made by :func:`segkit.pipeline.project.init_from`.
"""
