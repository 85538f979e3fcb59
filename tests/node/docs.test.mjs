// The operator guide's Node snippet (docs/guide/connect-app.md) runs as written (#17): the
// page's ```js block is written into this folder (so `import OpenAI from "openai"` resolves to
// the pinned package of tests/node) with one change, the address (the page's
// http://127.0.0.1:8080 becomes the demo gateway's), and run with node; its printed reply and
// `tutela` extras are checked, so a renamed field, parameter or header fails the test command.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const page = readFileSync(join(here, "../../docs/guide/connect-app.md"), "utf8");
const PAGE_ADDRESS = "http://127.0.0.1:8080";
const blocks = (lang) => [...page.matchAll(new RegExp("^```" + lang + "\\n([\\s\\S]*?)^```", "gm"))].map((m) => m[1]);

test("the guide's js snippet runs against the gateway", async () => {
  const snippets = blocks("js");
  assert.equal(snippets.length, 1, "connect-app.md: expected one js snippet");
  assert.ok(snippets[0].includes(`${PAGE_ADDRESS}/v1`), "the snippet names the documented address");
  const url = process.env.TUTELA_URL;
  assert.ok(url, "TUTELA_URL is not set; run tests/node/run.sh");
  const file = join(here, `.docs-snippet-${process.pid}.mjs`);
  writeFileSync(file, snippets[0].replaceAll(PAGE_ADDRESS, url.replace(/\/$/, "")));
  try {
    // console.log(text, object) prints the object with util.inspect: check it as text.
    const { stdout } = await promisify(execFile)(process.execPath, [file], { timeout: 120_000 });
    assert.match(stdout, /\S/, "the snippet printed nothing");
    assert.match(stdout, /aigc: \{[^}]*Label: '1'/, `no AIGC label in: ${stdout}`);
    // The snippet's user is new and in New York: Art. 47's AI notice comes with the first turn.
    assert.match(stdout, /notices: \[\s*\{/, `no notice in: ${stdout}`);
  } finally {
    rmSync(file, { force: true });
  }
});
