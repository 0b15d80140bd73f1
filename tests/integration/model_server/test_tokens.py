"""One token count: a job's trained_tokens is the dataset's Token Count (dataset-info) times its epochs.

The dataset is built by the real builder as ``build-dataset`` wires it (the Container's SQLite stores,
local blob folder and o200k counter), its file uploaded to the model server and trained through the ``openai`` SDK.
"""

from __future__ import annotations

from pathlib import Path

from openai import OpenAI

from lightning.bootstrap import Container
from lightning.config import get_settings
from lightning.services.datasets import BuildRequest, build_dataset, dataset_info
from tests.fakes.datasets import labeled_episode
from tests.integration.model_server.conftest import wait_for_job


def test_trained_tokens_agree_with_the_datasets_token_count(client: OpenAI, tmp_path: Path) -> None:
    ports = Container(get_settings()).dataset_ports()  # LIGHTNING_HOME: this test's own folder
    ports.episodes.add([labeled_episode(i, result={"rows": i, "region": "EMEA"}) for i in range(60)])
    build_dataset(BuildRequest(agent_id="autonomous-agent", name="tokens-v1", validation_split=0.0), ports)
    manifest = dataset_info("tokens-v1", datasets=ports.datasets)  # what `dataset-info` prints
    [train] = manifest.files
    assert manifest.token_count == train.tokens > 0
    path = ports.blobs.download_file(train.uri, tmp_path / "train.jsonl")
    with path.open("rb") as handle:
        training_file = client.files.create(file=handle, purpose="fine-tune").id

    for epochs in (1, 3):
        created = client.fine_tuning.jobs.create(
            model="local-base", training_file=training_file, hyperparameters={"n_epochs": epochs}
        )
        job, _ = wait_for_job(client, created.id)
        assert job.status == "succeeded", job.error
        assert job.trained_tokens is not None
        per_epoch = job.trained_tokens / epochs
        assert abs(per_epoch - manifest.token_count) <= 0.02 * manifest.token_count, (
            per_epoch,
            manifest.token_count,
        )
