"""Every operation in examples/ runs, with its caller's key, against a freshly seeded gateway
and returns data without errors; each is one named operation; and the README's example
queries are these files, word for word."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import OperationDefinitionNode, OperationType, parse
from websockets.asyncio.client import connect

from tests.gateway.example_gateway import CALLERS, EXAMPLES, ROOT, ExampleGateway, example_gateway

FILES = sorted(EXAMPLES.rglob("*.graphql"))
TEXTS = {path: path.read_text(encoding="utf-8") for path in FILES}
# A safety net against a hang, never a measure: each wait ends on the message it waits for.
PATIENCE_S = 60


def _relative(path: Path) -> str:
    return path.relative_to(EXAMPLES).as_posix()


def _operation(path: Path) -> OperationDefinitionNode:
    operations = [
        d for d in parse(TEXTS[path]).definitions if isinstance(d, OperationDefinitionNode)
    ]
    assert len(operations) == 1, f"{_relative(path)}: one operation a file"
    return operations[0]


def _variables(path: Path) -> dict[str, Any]:
    sibling = path.with_suffix(".json")
    if not sibling.exists():
        return {}
    loaded: dict[str, Any] = json.loads(sibling.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ExampleGateway]:
    async with example_gateway(tmp_path_factory.mktemp("examples")) as gateway:
        yield gateway


def test_examples_cover_every_kind_of_caller() -> None:
    folders = {path.relative_to(EXAMPLES).parts[0] for path in FILES}
    assert folders == set(CALLERS), "every folder of examples/ names its caller in callers.json"
    assert {"notary", "bank", "counter", "operator", "citizen-portal"} <= folders
    departments = {label for label in CALLERS.values() if label.startswith("department:")}
    assert len(departments) >= 10, "one folder at least for each department"


@pytest.mark.parametrize("path", FILES, ids=_relative)
def test_each_file_is_one_operation_named_as_the_file(path: Path) -> None:
    operation = _operation(path)
    assert operation.name is not None, f"{_relative(path)}: name the operation"
    assert operation.name.value == path.stem
    declared = {v.variable.name.value for v in operation.variable_definitions or ()}
    assert set(_variables(path)) <= declared, "the variables file gives only declared ones"


async def _post(
    served: ExampleGateway, key: str, path: Path, variables: dict[str, Any]
) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=PATIENCE_S) as http:
        response = await http.post(
            served.url,
            json={
                "query": TEXTS[path],
                "operationName": path.stem,
                "variables": variables,
            },
            headers={"Authorization": f"Bearer {key}", "X-Road-Issue": "examples-test"},
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _subscribe_and_revoke(served: ExampleGateway, label: str, path: Path) -> dict[str, Any]:
    """The subscription over graphql-transport-ws, and a revocation for it to hear."""
    listening_key = served.keys[label]
    prefix, _ = await served.mint(label)
    revoke = EXAMPLES / "notary" / "RevokeApiKey.graphql"
    async with (
        asyncio.timeout(PATIENCE_S),
        connect(f"ws://{served.address}/graphql", subprotocols=["graphql-transport-ws"]) as ws,  # type: ignore[list-item]
    ):
        payload = {"Authorization": f"Bearer {listening_key}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        subscribe = {"query": TEXTS[path], "operationName": path.stem}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
        # The subscription is registered once the gateway answers a ping sent after it.
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv())["type"] == "pong"
        revoked = await _post(served, listening_key, revoke, {"prefix": prefix})
        assert "errors" not in revoked, revoked
        message = json.loads(await ws.recv())
    assert message["type"] == "next", message
    event: dict[str, Any] = message["payload"]
    assert event["data"]["apiKeyRevoked"]["prefix"] == prefix
    return event


async def _fill(served: ExampleGateway, label: str, path: Path, variables: dict[str, Any]) -> None:
    """Values only a running gateway knows, in place of the placeholders of the .json files:
    a key of the caller's own to revoke, the tracking code its submission was given."""
    if path.stem == "RevokeApiKey":
        variables["prefix"] = (await served.mint(label))[0]
    elif path.stem == "CitizenRequestStatus":
        submit = path.with_name("SubmitCitizenRequest.graphql")
        # The same idempotency key again: the same request, whichever test ran first.
        submitted = await _post(served, served.keys[label], submit, _variables(submit))
        variables["trackingCode"] = submitted["data"]["submitCitizenRequest"]["trackingCode"]


@pytest.mark.parametrize("path", FILES, ids=_relative)
async def test_each_example_returns_data_without_errors(served: ExampleGateway, path: Path) -> None:
    label = CALLERS[path.relative_to(EXAMPLES).parts[0]]
    variables = _variables(path)
    operation = _operation(path)
    if operation.operation is OperationType.SUBSCRIPTION:
        body = await _subscribe_and_revoke(served, label, path)
    else:
        await _fill(served, label, path, variables)
        body = await _post(served, served.keys[label], path, variables)
    assert "errors" not in body, body
    data = body["data"]
    assert data, body
    for field, value in data.items():
        assert value is not None, f"{_relative(path)}: {field} is null"


def _readme_examples() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Example queries\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```graphql\n(.*?)```", section, flags=re.S)


def test_the_readme_examples_are_the_files() -> None:
    blocks = _readme_examples()
    assert len(blocks) >= 8
    texts = {text: path for path, text in TEXTS.items()}
    for block in blocks:
        assert block in texts, f"not a file of examples/ (copy it there, or from there):\n{block}"
