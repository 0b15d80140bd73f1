"""/v1/files through the openai SDK: upload, list, retrieve, content, delete, and the API's errors."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types import FileObject

from lightning.adapters.modelserver.server import start_server
from tests.integration.model_server.conftest import client_for, upload
from tests.integration.model_server.data import jsonl, split_samples


def test_upload_list_retrieve_content_delete(client: OpenAI) -> None:
    data = jsonl(split_samples(12, 0)[0])
    created = client.files.create(file=("train.jsonl", io.BytesIO(data)), purpose="fine-tune")
    FileObject.model_validate(created.to_dict())  # every field the SDK declares, in its types
    assert (created.object, created.purpose, created.status, created.bytes) == (
        "file",
        "fine-tune",
        "processed",
        len(data),
    )
    assert created.filename == "train.jsonl"
    assert client.files.retrieve(created.id) == created
    assert created.id in [item.id for item in client.files.list(purpose="fine-tune")]
    assert client.files.content(created.id).content == data
    deleted = client.files.delete(created.id)
    assert deleted.deleted
    assert deleted.id == created.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)


def test_files_list_pages_with_after_and_limit(client: OpenAI) -> None:
    ids = [upload(client, b'{"messages": []}\n', f"f{index}.jsonl") for index in range(3)]
    page = client.files.list(limit=2)
    assert [item.id for item in page.data] == ids[::-1][:2]
    assert page.has_more
    rest = client.files.list(limit=2, after=page.data[-1].id)
    assert rest.data[0].id == ids[0]


def test_wrong_purpose_is_a_400_with_the_api_error_shape(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.files.create(file=("train.jsonl", io.BytesIO(b"{}\n")), purpose="assistants")
    assert caught.value.status_code == 400
    assert caught.value.body == {
        "message": "Invalid value for 'purpose': the local model server only accepts 'fine-tune' files, got 'assistants'.",
        "type": "invalid_request_error",
        "param": "purpose",
        "code": None,
    }


def test_unknown_purpose_missing_file_and_wrong_extension_are_400(model_server, client: OpenAI) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(openai.BadRequestError, match="not a file purpose"):
        client.files.create(file=("train.jsonl", io.BytesIO(b"{}\n")), purpose="nonsense")  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match=r"Must be \.jsonl"):
        client.files.create(file=("train.csv", io.BytesIO(b"a,b\n")), purpose="fine-tune")
    response = httpx.post(
        f"{model_server.base_url}/files", data={"purpose": "fine-tune"}, files={"other": ("x", b"1")}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "file"
    response = httpx.post(f"{model_server.base_url}/files", json={"purpose": "fine-tune"})
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_unknown_file_ids_are_404(client: OpenAI) -> None:
    for call in (client.files.retrieve, client.files.content, client.files.delete):
        with pytest.raises(openai.NotFoundError) as caught:
            call("file-doesnotexist")
        assert caught.value.body["message"] == "No such File object: file-doesnotexist"  # type: ignore[index]


def test_a_file_over_the_limit_is_a_413(tmp_path: Path) -> None:
    with start_server(data_dir=tmp_path, max_file_bytes=64 * 1024) as small:
        client = client_for(small)
        upload(client, b"x" * (64 * 1024))  # exactly at the limit is fine
        for size in (64 * 1024 + 1, 3 * 1024 * 1024):  # parsed, then refused; refused from Content-Length
            with pytest.raises(openai.APIStatusError) as caught:
                upload(client, b"x" * size)
            assert caught.value.status_code == 413
            assert caught.value.body["code"] == "file_too_large"  # type: ignore[index]
            assert caught.value.body["param"] == "file"  # type: ignore[index]
        assert len(client.files.list().data) == 1
        assert not list((tmp_path / "files").glob("*.tmp"))
