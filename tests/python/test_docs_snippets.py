"""The operator guide's SDK snippets (docs/guide/connect-app.md) run as written (#17).

Each ```python block of the page runs in a fresh interpreter of this virtual environment
against the demo gateway: the one change is the address (the page's `http://127.0.0.1:8080`
becomes the test gateway's). The printed reply and the `tutela` extras are checked, so a
renamed field, parameter or header in the page or in the gateway fails the test command.
"""

import ast
import pathlib
import re
import subprocess
import sys

PAGE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "guide" / "connect-app.md"
PAGE_ADDRESS = "http://127.0.0.1:8080"


def blocks(lang):
    """The page's fenced code blocks of one language, in order."""
    return re.findall(r"^```" + lang + r"\n(.*?)^```", PAGE.read_text(), re.S | re.M)


def test_the_page_has_a_python_snippet_for_the_documented_address():
    snippets = blocks("python")
    assert len(snippets) == 1, "connect-app.md: expected one python snippet"
    assert PAGE_ADDRESS + "/v1" in snippets[0]


def test_the_python_snippet_runs_against_the_gateway(base_url):
    (code,) = blocks("python")
    code = code.replace(PAGE_ADDRESS, base_url)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) >= 2, done.stdout
    reply, extras = "\n".join(lines[:-1]), lines[-1]
    assert reply.strip(), "the snippet printed no reply"
    # The last line is the `tutela` object as Python prints a dict: notices, the AIGC label.
    tutela = ast.literal_eval(extras)
    assert isinstance(tutela, dict), extras
    assert tutela["aigc"]["Label"] == "1", tutela
    # The snippet's user is new and in California: SB 243's AI notice comes with the first turn.
    assert tutela["notices"], tutela
