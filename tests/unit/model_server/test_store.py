"""The server's persistence: files, jobs and models survive a new Store on the same directory."""

from __future__ import annotations

from pathlib import Path

from lightning.adapters.modelserver.store import Store


def test_files_jobs_and_models_survive_reopening(tmp_path: Path) -> None:
    store = Store(tmp_path)
    first = store.add_file_bytes(filename="a.jsonl", purpose="fine-tune", data=b"{}\n")
    second = store.add_file_bytes(filename="b.jsonl", purpose="fine-tune", data=b"{}\n{}\n")
    store.add_job({"id": "ftjob-1", "status": "queued", "_events": []})
    store.update_job("ftjob-1", lambda job: job.update(status="running"))
    store.add_models(
        {
            "ft:local-base:x:1": {
                "artifact": "ftjob-1.joblib",
                "job_id": "ftjob-1",
                "created": 1,
                "owned_by": "user",
            }
        }
    )

    reopened = Store(tmp_path)
    assert [record["id"] for record in reopened.list_files()] == [second["id"], first["id"]]
    assert reopened.file_content(second["id"]) == b"{}\n{}\n"
    assert reopened.get_file(first["id"])["bytes"] == 3  # type: ignore[index]
    assert reopened.get_job("ftjob-1")["status"] == "running"  # type: ignore[index]
    assert reopened.get_model("ft:local-base:x:1") is not None
    third = reopened.add_file_bytes(filename="c.jsonl", purpose="fine-tune", data=b"{}")
    assert reopened.list_files()[0]["id"] == third["id"]  # newest first, also after a restart


def test_deleting_a_file_removes_its_bytes(tmp_path: Path) -> None:
    store = Store(tmp_path)
    record = store.add_file_bytes(filename="a.jsonl", purpose="fine-tune", data=b"x")
    assert store.delete_file(record["id"])
    assert store.get_file(record["id"]) is None
    assert not list((tmp_path / "files").iterdir())
    assert not store.delete_file(record["id"])


def test_a_torn_record_is_skipped(tmp_path: Path) -> None:
    Store(tmp_path).add_job({"id": "ftjob-ok", "status": "queued"})
    (tmp_path / "jobs" / "ftjob-torn.json").write_text('{"id": "ftjob-torn", "sta')
    assert [job["id"] for job in Store(tmp_path).list_jobs()] == ["ftjob-ok"]


def test_deleting_a_model_drops_its_checkpoints_and_artifact(tmp_path: Path) -> None:
    store = Store(tmp_path)
    (tmp_path / "models" / "ftjob-1.joblib").write_bytes(b"model")
    entry = {"artifact": "ftjob-1.joblib", "job_id": "ftjob-1", "created": 1, "owned_by": "user"}
    store.add_models({"ft:m": entry, "ft:m:ckpt-step-2": {**entry, "checkpoint_step": 2}})
    assert not store.delete_model("ft:m:ckpt-step-2")
    assert store.delete_model("ft:m")
    assert store.list_models() == []
    assert not (tmp_path / "models" / "ftjob-1.joblib").exists()
