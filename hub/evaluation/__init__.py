"""Structured evaluation of applications: resume keywords, assessments, interviews, background checks.

The pieces, each usable on its own:

- :mod:`hub.evaluation.config` — the ``[evaluation]`` table of hub.toml (validated with the rest
  of the file by :func:`hub.config.load_settings`);
- :mod:`hub.evaluation.template` — the structured-interview competency template;
- :mod:`hub.evaluation.text` — keyword matching for Chinese and English text, years of experience;
- :mod:`hub.evaluation.store` — the loader of the canonical store (the ``sql`` destination the
  recruiting pipelines write), opening sealed values through the project's keyring;
- :mod:`hub.evaluation.scoring` — the scoring formula (documented in ``docs/evaluation.md``);
- :mod:`hub.evaluation.service` — what the CLI and the ``evaluation`` source connector call.

This module imports nothing on purpose: :mod:`hub.config` imports the config module while hub
starts, and must not pull the loader (SQLAlchemy reflection, the keyring) in with it.
"""
