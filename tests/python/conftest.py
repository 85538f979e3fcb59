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
