"""Change-feed auto-labeling: Cosmos DB trigger on ``rl_episodes`` (leases in ``leases``).

Connection app setting ``COSMOS_CONNECTION`` — with managed identity, set
``COSMOS_CONNECTION__accountEndpoint`` (and ``COSMOS_CONNECTION__credential=managedidentity``, plus
``__clientId`` for a user-assigned identity); never a key. The handler turns the delivered documents
into ``Episode``s (keeping ``_etag`` as the etag, so a label written after the feed snapshot is never
overwritten) and calls ``label_new_episodes``, which skips labeled episodes — so this function's own
writes, which come back through the feed, end there — and records a failing episode without stopping
the batch. A document that is not an episode is logged and skipped. Store/provider outages raise, so
the function-level retry policy below delivers the batch again: without one, the Cosmos DB trigger does
not retry a batch whose execution raised (docs/functions.md, Retries). Episodes still unlabeled after the
last retry are picked up by ``label-batch``.
"""

from __future__ import annotations

import logging

import azure.functions as func
from pydantic import ValidationError

from lightning.functions._runtime import container, loop_policy

logger = logging.getLogger(__name__)

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.cosmos_db_trigger(
    arg_name="documents",
    connection="COSMOS_CONNECTION",
    database_name="agents",
    container_name="rl_episodes",
    lease_container_name="leases",
    create_lease_container_if_not_exists=False,
)
@bp.retry(
    strategy="exponential_backoff",
    max_retry_count="5",
    minimum_interval="00:00:10",
    maximum_interval="00:05:00",
)
def label_changed_episodes(documents: func.DocumentList) -> None:
    from lightning.domain.episode import Episode
    from lightning.services.labeling import label_new_episodes

    episodes = []
    for document in documents:
        data = document.to_dict()
        try:
            episode = Episode.model_validate(data)
        except ValidationError as exc:
            logger.warning(
                "change feed: skipped document %s (not an episode: %s)",
                data.get("id"),
                exc.errors()[0].get("msg") if exc.errors() else exc,
            )
            continue
        episodes.append(episode.model_copy(update={"etag": data.get("_etag")}))
    if not episodes:
        return
    report = label_new_episodes(episodes, container().labeling_ports(), loop_policy().labeling)
    logger.info(
        "change feed: %d document(s), labeled %d, skipped %d, failed %d",
        len(documents),
        report.labeled,
        report.skipped,
        report.failed,
    )
