"""The Azure Functions app (Python v2 programming model): the loop's steps bound to Azure triggers.

The Functions host imports this module only to index the functions, so nothing is built here: each
blueprint builds its clients on first invocation from the app settings (``lightning.functions._runtime``).

==========================  ===========================================  ===================================
blueprint                   trigger                                      service
==========================  ===========================================  ===================================
``labeling``                Cosmos DB change feed on ``rl_episodes``     ``label_new_episodes``
``datasets``                timer ``%DATASET_TIMER_SCHEDULE%``           ``build_datasets_when_ready``
``finetune``                Service Bus ``fine-tune-jobs``               ``start_or_poll_fine_tune``
``finetune``                Service Bus ``fine-tune-done``               ``promote_and_roll_out``
``http``                    HTTP ``/api/...`` (auth level FUNCTION)      labeling, datasets, training, status
``promotions``              HTTP ``/api/models/{id}/promote`` → 202      ``request_promotion`` (+ status URL)
``console``                 HTTP ``/api/console/{file}`` (anonymous)     the review console's static page
==========================  ===========================================  ===================================

App settings are documented in ``docs/functions.md``.
"""

from __future__ import annotations

import azure.functions as func

from lightning.functions import console, datasets, finetune, http, labeling, promotions

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (labeling.bp, datasets.bp, finetune.bp, http.bp, promotions.bp, console.bp):
    app.register_functions(blueprint)
