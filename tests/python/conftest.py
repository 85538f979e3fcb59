"""Fixtures for the end-to-end tests: a running `tutela serve` (started by run.sh) and the
official `openai` client pointed at it."""

import json
import os
import urllib.request

import pytest
from openai import OpenAI


@pytest.fixture(scope="session")
def base_url() -> str:
    url = os.environ.get("TUTELA_URL")
    if not url:
        pytest.skip("TUTELA_URL is not set; run tests/python/run.sh")
    return url.rstrip("/")


@pytest.fixture(scope="session")
def client(base_url: str) -> OpenAI:
    # The gateway needs no key for the demo upstream; the SDK insists on one.
    return OpenAI(base_url=f"{base_url}/v1", api_key="not-needed-for-the-demo", max_retries=0, timeout=60)


class Admin:
    """The admin API, with the bearer token run.sh exported."""

    def __init__(self, base_url: str, token: str):
        self.base_url = base_url
        self.token = token

    def call(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())


@pytest.fixture(scope="session")
def admin(base_url: str) -> Admin:
    return Admin(base_url, os.environ["TUTELA_ADMIN_TOKEN"])


def _env_url(name: str) -> str:
    url = os.environ.get(name)
    if not url:
        pytest.skip(f"{name} is not set; run tests/python/run.sh")
    return url.rstrip("/")


@pytest.fixture(scope="session")
def mock_url() -> str:
    return _env_url("TUTELA_MOCK_URL")


@pytest.fixture(scope="session")
def mock_client(mock_url: str) -> OpenAI:
    """The gateway in front of the mock upstream (markers in the message pick a shape or a
    fault: shape:json, shape:tool, fault:404, ...), with a 1-second upstream timeout."""
    return OpenAI(base_url=f"{mock_url}/v1", api_key="not-needed", max_retries=0, timeout=30)


@pytest.fixture(scope="session")
def mock_admin(mock_url: str) -> Admin:
    return Admin(mock_url, os.environ["TUTELA_ADMIN_TOKEN"])


@pytest.fixture(scope="session")
def dead_client() -> OpenAI:
    """The gateway whose upstream refuses connections."""
    url = _env_url("TUTELA_DEAD_URL")
    return OpenAI(base_url=f"{url}/v1", api_key="not-needed", max_retries=0, timeout=30)
