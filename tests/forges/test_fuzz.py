"""Fuzzing the webhook front door: any body or header gives a result or PayloadError, never a crash."""

from __future__ import annotations

import json
from typing import Any

from forge_fixtures import all_shared, shared_payload
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.forges import Ignored, PayloadError, Ping, PushEvent, parse_event, verify_signature

FORGES = st.sampled_from(["github", "gitlab", "gitea"])
EVENT_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "X-GitHub-Event": st.sampled_from(["push", "ping", "issues", ""]),
        "X-Gitlab-Event": st.sampled_from(["Push Hook", "Tag Push Hook", "Note Hook", ""]),
        "X-Gitea-Event": st.sampled_from(["push", "create", ""]),
        "X-GitHub-Delivery": st.text(max_size=50),
        "Content-Type": st.sampled_from(["application/json", "application/x-www-form-urlencoded"]),
    },
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)


def outcome(forge: str, headers: dict[str, str], body: bytes) -> Any:
    try:
        return parse_event(forge, headers, body)
    except PayloadError as error:
        assert "\n" not in str(error)
        return error


@settings(max_examples=150, deadline=None)
@given(FORGES, EVENT_HEADERS, st.binary(max_size=300))
def test_random_bytes(forge: str, headers: dict[str, str], body: bytes) -> None:
    assert isinstance(outcome(forge, headers, body), PushEvent | Ping | Ignored | PayloadError)


@settings(max_examples=150, deadline=None)
@given(FORGES, EVENT_HEADERS, JSON_VALUES)
def test_random_json(forge: str, headers: dict[str, str], value: Any) -> None:
    body = json.dumps(value).encode()
    assert isinstance(outcome(forge, headers, body), PushEvent | Ping | Ignored | PayloadError)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_real_payloads_with_fields_broken(data: st.DataObject) -> None:
    stored = all_shared()
    if not stored:
        return  # the other tests skip with the reason; nothing to mutate here
    relpath = data.draw(st.sampled_from(stored))
    payload = json.loads(shared_payload(relpath))
    key = data.draw(st.sampled_from(sorted(payload)))
    payload[key] = data.draw(JSON_VALUES)
    forge = relpath.split("/")[0]
    headers = {"github": {"X-GitHub-Event": "push"}, "gitlab": {}, "gitea": {"X-Gitea-Event": "push"}}[forge]
    result = outcome(forge, headers, json.dumps(payload).encode())
    assert isinstance(result, PushEvent | Ignored | PayloadError)
    if isinstance(result, PushEvent):
        assert result.ref.startswith("refs/") and len(result.sha) in (40, 64)


TEXT = st.text(st.characters(codec=None, categories=None), max_size=20)  # lone surrogates too


@settings(max_examples=200, deadline=None)
@given(
    FORGES,
    TEXT,
    st.binary(max_size=64),
    st.dictionaries(TEXT, TEXT),
)
def test_signatures_never_raise(forge: str, secret: str, body: bytes, headers: dict[str, str]) -> None:
    assert verify_signature(forge, secret, body, headers) in (True, False)
