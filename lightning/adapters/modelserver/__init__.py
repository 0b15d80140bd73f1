"""The local OpenAI-compatible model server and its CPU trainer.

``python -m lightning.cli serve-models`` runs it; tests start it in-process
(``server.start_server``). The package speaks the subset of the OpenAI API the
project uses (files, fine-tuning jobs, models, chat completions with tools):

- ``app``: the Starlette app (routes, request validation, the API's error shape);
- ``store``: files, jobs and models persisted under the data directory;
- ``catalog``: which models answer (``local-base``, fine-tuned models and their checkpoints);
- ``jobs``: the background job runner (validating_files → queued → running → …);
- ``trainer``: training-file validation and the learner (tool selector + argument extraction);
- ``zeroshot``: ``local-base``, the untrained base model;
- ``text``: tokenization, argument extraction rules and token counting shared by both models;
- ``server``: start/stop helpers (in-process for tests, blocking for the CLI).

Heavy libraries (scikit-learn, numpy, uvicorn) are imported by these modules
only; nothing else in ``lightning`` imports this package, so the Function App
never needs them.
"""

from __future__ import annotations
