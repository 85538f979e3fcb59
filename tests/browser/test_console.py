"""The operator console in real headless Chromium, against a running `tutela serve`.

Walks what a trust & safety team does: sign in; crisis messages in English and Chinese arrive
live in the queue with their severity (no reload); the agent sees the triggering message and the
turns before it, claims, replies with a quick template; the person receives the reply in their
conversation; a second agent cannot resolve a case they do not hold; a supervisor resolves it
with a note; compliance reads but has no reply box, opens each report and downloads each as a
PDF; the console in Chinese at 390 px.
Screenshots of each step go to $TUTELA_ARTIFACTS.
"""

import json
import os
import re
import urllib.request

import pytest
from playwright.sync_api import expect, sync_playwright

URL = os.environ["TUTELA_URL"]
PASSWORD = os.environ["TUTELA_STAFF_PASSWORD"]
ARTIFACTS = os.environ["TUTELA_ARTIFACTS"]

IMMINENT_EN = "I'm going to kill myself tonight, I already have the pills."
IMMINENT_ZH = "我今晚就要自杀，药都准备好了。"
PRIOR = [
    {"role": "user", "content": "hi, long day"},
    {"role": "assistant", "content": "I'm here. What happened?"},
]


def chat(user, messages):
    """A chat turn as the person's app sends it; the reply text."""
    req = urllib.request.Request(
        URL + "/v1/chat/completions",
        data=json.dumps({"messages": messages}).encode(),
        headers={"content-type": "application/json", "x-tutela-user": user},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)["choices"][0]["message"]["content"]


def shot(page, name):
    page.screenshot(path=os.path.join(ARTIFACTS, name + ".png"), full_page=True)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=os.environ["TUTELA_CHROMIUM"],
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        yield b
        b.close()


def sign_in(browser, username, locale="en-US", width=1280, color_scheme="light"):
    ctx = browser.new_context(
        locale=locale, viewport={"width": width, "height": 900}, color_scheme=color_scheme
    )
    page = ctx.new_page()
    page.goto(URL + "/console")
    expect(page).to_have_url(re.compile(r"/console/login\?next="))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/console/login'] button[type=submit]")
    expect(page).to_have_url(URL + "/console")
    return page


def test_a_crisis_from_queue_to_resolution(browser):
    ann = sign_in(browser, "ann")
    expect(ann.locator("#live")).to_have_class(re.compile(r"\bon\b"), timeout=15_000)
    shot(ann, "01-queue-empty")

    # The person writes; the case arrives in the open queue without a reload.
    chat("u-browser-en", PRIOR + [{"role": "user", "content": IMMINENT_EN}])
    en_row = ann.locator("li.case", has_text="u-browser-en")
    expect(en_row).to_have_count(1, timeout=15_000)
    expect(en_row).to_have_attribute("data-signal", "imminent")
    chat("u-browser-zh", [{"role": "user", "content": IMMINENT_ZH}])
    zh_row = ann.locator("li.case", has_text="u-browser-zh")
    expect(zh_row).to_have_count(1, timeout=15_000)
    expect(zh_row).to_have_attribute("data-signal", "imminent")
    shot(ann, "02-queue-live")

    # The case view: the message that opened it (spans marked) and the turns before it.
    en_row.locator("a").click()
    expect(ann.locator(".turn.trigger")).to_contain_text("kill myself")
    expect(ann.locator(".turn.trigger mark").first).to_be_visible()
    expect(ann.locator(".turn.user").first).to_contain_text("hi, long day")
    expect(ann.locator(".turn.assistant").first).to_contain_text("What happened?")
    expect(ann.locator("pre.help")).to_contain_text("988")
    case_url = ann.url
    shot(ann, "03-case-view")

    # Claim, then reply with a quick template.
    ann.click("form[action$='/claim'] button")
    expect(ann.locator(".status")).to_contain_text("ann")
    ann.select_option("#template", index=1)
    expect(ann.locator("#reply-text")).to_have_value(re.compile(r"real person"))
    ann.click("form.reply button[type=submit]")
    expect(ann.locator(".turn.staff")).to_contain_text("real person")
    shot(ann, "04-replied")

    # The person receives it in their own conversation.
    reply = chat("u-browser-en", PRIOR + [
        {"role": "user", "content": IMMINENT_EN},
        {"role": "assistant", "content": "..."},
        {"role": "user", "content": "hello?"},
    ])
    assert "real person" in reply, reply

    # Ann's case view is live: the person's message and the delivery appear without a reload.
    expect(ann.locator(".turn.user", has_text="hello?")).to_be_visible(timeout=15_000)
    expect(ann.locator(".turn.staff").last).to_contain_text("delivered")
    expect(ann.locator(".turn.staff").last).not_to_contain_text("not yet delivered")
    shot(ann, "04b-live-case")

    # A second agent does not hold the case: no resolve form, and a forged post is refused.
    bob = sign_in(browser, "bob")
    bob.goto(case_url)
    expect(bob.locator("form.resolve")).to_have_count(0)
    csrf = bob.locator("form[action='/console/logout'] input[name=csrf]").get_attribute("value")
    r = bob.request.post(case_url + "/resolve", form={"csrf": csrf, "note": "x", "outcome": "other"})
    assert r.status == 409, r.status
    shot(bob, "05-second-agent")

    # Compliance reads the case but has no reply box.
    cleo = sign_in(browser, "cleo")
    cleo.goto(case_url)
    expect(cleo.locator(".turn.trigger")).to_be_visible()
    expect(cleo.locator("form.reply")).to_have_count(0)

    # The supervisor resolves Ann's case, with a note and an outcome.
    sue = sign_in(browser, "sue")
    sue.goto(case_url)
    sue.select_option("form.resolve select[name=outcome]", "referred")
    sue.fill("form.resolve textarea[name=note]", "Safe with her sister; referred to 988.")
    sue.click("form.resolve button[type=submit]")
    expect(sue.locator(".status")).to_contain_text("resolved")
    expect(sue.locator("dd", has_text="referred to 988")).to_be_visible()
    shot(sue, "06-resolved")

    # The person is told they are talking to the AI again, once.
    # (Messages no detector tier flags, so no new case opens.)
    reply = chat("u-browser-en", PRIOR + [{"role": "user", "content": "can we talk about music?"}])
    assert "talking to the AI again" in reply, reply
    reply = chat("u-browser-en", PRIOR + [{"role": "user", "content": "what's your favourite film?"}])
    assert "talking to the AI again" not in reply, reply

    # Gone from the open queue, live.
    ann.goto(URL + "/console")
    expect(ann.locator("li.case", has_text="u-browser-en")).to_have_count(0)


def test_a_new_imminent_case_rings_and_notifies(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    # Record what the page asks of the desktop and the speaker (the real ones need a person).
    ctx.add_init_script("""
        window.__notes = []; window.__beeps = 0;
        window.Notification = class { constructor(t) { window.__notes.push(t); }
            static requestPermission() { return Promise.resolve("granted"); } };
        window.Notification.permission = "granted";
        const Real = window.AudioContext;
        window.AudioContext = class extends Real { constructor() { super(); window.__beeps++; } };
    """)
    page = ctx.new_page()
    page.goto(URL + "/console")
    page.fill("input[name=username]", "sue")
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/console/login'] button[type=submit]")
    expect(page.locator("#live")).to_have_class(re.compile(r"\bon\b"), timeout=15_000)
    expect(page.locator("#alerts")).to_be_disabled()  # permission already granted
    chat("u-browser-alert", [{"role": "user", "content": IMMINENT_EN}])
    expect(page.locator("li.case", has_text="u-browser-alert")).to_have_count(1, timeout=15_000)
    # Polled from here: `wait_for_function` evaluates its predicate as a string inside the page,
    # which the console's Content-Security-Policy (no 'unsafe-eval') rightly refuses.
    notes = []
    for _ in range(50):
        notes = page.evaluate("window.__notes")
        if notes:
            break
        page.wait_for_timeout(100)
    assert any(n.startswith("New imminent case #") for n in notes), notes
    assert page.evaluate("window.__beeps") >= 1
    assert page.title().startswith("(!) ")
    ctx.close()


def assert_fits(page, width=390):
    """Nothing wider than the screen; on failure, the elements that stick out."""
    wide = page.evaluate("""(w) => document.documentElement.scrollWidth <= w ? [] :
        [...document.querySelectorAll("body *")]
            .filter(e => e.getBoundingClientRect().right > w + 1)
            .slice(0, 8)
            .map(e => e.tagName + "." + e.className + " " + Math.round(e.getBoundingClientRect().right)
                 + " " + (e.textContent || "").slice(0, 40))""", width)
    assert not wide, wide


def test_the_console_in_chinese_at_390_px(browser):
    page = sign_in(browser, "ann", locale="zh-CN", width=390)
    expect(page.locator("h1")).to_contain_text("待处理案例")
    chat("u-browser-zh2", [{"role": "user", "content": IMMINENT_ZH}])
    row = page.locator("li.case", has_text="u-browser-zh2")
    expect(row).to_have_count(1, timeout=15_000)
    expect(row.locator(".badge")).to_contain_text("紧急")
    # Nothing wider than the screen.
    assert_fits(page)
    shot(page, "07-queue-zh-390")
    row.locator("a").click()
    expect(page.locator(".turn.trigger")).to_contain_text("自杀")
    expect(page.locator("#template option").nth(1)).to_have_text("自我介绍")
    assert_fits(page)
    shot(page, "08-case-zh-390")
    # The switch in the header goes back to English.
    page.click("a.lang")
    expect(page.locator("h1")).to_contain_text("Case")


def test_compliance_opens_each_report_and_downloads_one(browser):
    page = sign_in(browser, "cleo")
    page.click("header nav a[href='/console/compliance']")
    expect(page.locator("h1")).to_contain_text("Compliance")
    # Usage against the thresholds (the default deployment includes CN: 1,000,000 registered,
    # 100,000 monthly active), with six months of monthly active users.
    expect(page.locator("ul.thresholds meter")).to_have_count(2)
    expect(page.locator("ul.thresholds")).to_contain_text("1,000,000")
    expect(page.locator("table.trend tbody tr")).to_have_count(6)
    shot(page, "09-compliance")
    for link in page.locator("ul.reports > li > a:first-child").all():
        href = link.get_attribute("href")
        r = page.request.get(URL + href)
        assert r.status == 200, (href, r.status)
        assert r.headers["content-type"].startswith("text/html"), href
    # The CN assessment in the language of its regulator, and its English version.
    page.goto(URL + "/console/reports/assessment?format=html")
    expect(page.locator("h1")).to_have_text("人工智能拟人化互动服务安全评估报告")
    expect(page.locator("section.human h2").last).to_contain_text("签字确认")
    shot(page, "10-report-assessment")
    page.goto(URL + "/console/reports/assessment?format=html&lang=en")
    expect(page.locator("h1")).to_contain_text("Security assessment")
    shot(page, "10-report-assessment-en")
    page.goto(URL + "/console/compliance")
    with page.expect_download() as d:
        page.click("a[href^='/console/reports/transparency?format=md&download=1&month=']")
    path = os.path.join(ARTIFACTS, "tutela-transparency.md")
    d.value.save_as(path)
    with open(path, encoding="utf-8") as f:
        assert f.read().startswith("#")
    # Every report downloads as a PDF: a well-formed file (each cross-reference entry points at
    # its object) with the report's title in it.
    # (The CN assessment twice: in Chinese and in English.)
    pdfs = 0
    for pdf_link in page.locator("ul.reports > li a[href*='format=pdf&download=1&']").all():
        kind = pdf_link.get_attribute("href").split("/")[3].split("?")[0]
        with page.expect_download() as d:
            pdf_link.click()
        name = d.value.suggested_filename
        lang = r"-(zh|en)" if kind == "assessment" else ""
        assert re.fullmatch(r"tutela-%s-\d{4}(-\d{2})?%s\.pdf" % (re.escape(kind), lang), name), name
        path = os.path.join(ARTIFACTS, d.value.suggested_filename)
        d.value.save_as(path)
        with open(path, "rb") as f:
            pdf = f.read()
        check_pdf(pdf, kind)
        pdfs += 1
    assert pdfs == 7, pdfs
    page.goto(URL + "/console/audit")
    expect(page.locator("p.ok")).to_be_visible()


def check_pdf(pdf, kind):
    """A PDF as tutela writes it: ASCII, cross-references pointing at their objects, text."""
    assert pdf.startswith(b"%PDF-1.4\n") and pdf.endswith(b"%%EOF\n"), kind
    text = pdf.decode("ascii")
    start = int(text.splitlines()[-2])
    assert text[start:].startswith("xref\n"), kind
    entries = [l for l in text[start:].splitlines()[3:] if l.endswith(" n ")]
    assert len(entries) >= 10, kind
    for i, e in enumerate(entries):
        assert text[int(e[:10]):].startswith("%d 0 obj\n" % (i + 1)), (kind, i)
    assert "/Type /Page " in text and " Tj ET" in text, kind


def test_dark_mode_follows_the_system(browser):
    page = sign_in(browser, "sue", color_scheme="dark")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 20, 24)", background
    rows = page.locator("li.case")
    if rows.count():
        rows.first.locator("a").click()
    shot(page, "11-dark")


def test_the_demo_crisis_reply_starts_with_care_and_shows_the_notice_once(browser):
    page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    page.goto(URL + "/")
    page.fill("#user", "u-demo-care")
    page.fill("#text", IMMINENT_EN)
    page.click("#send")
    reply = page.locator("#log .msg").last
    expect(reply.locator(".body")).to_contain_text("988", timeout=15_000)
    expect(reply.locator(".body")).to_have_text(re.compile(r"^I'm really glad you told me"))
    expect(reply.locator(".body")).not_to_contain_text("Reminder:")
    expect(reply.locator(".notice")).to_have_count(1)
    expect(reply.locator(".notice")).to_contain_text("not a human")
    shot(page, "12-demo-crisis-reply")

    # While the turn waits for a person: an honest status, and Send stays on.
    page.fill("#text", "hello?")
    page.click("#send")
    waiting = page.locator("#log .msg").last
    expect(waiting.locator(".body")).to_contain_text("went to our team")
    expect(waiting.locator(".body")).to_contain_text("Waiting for a person to pick up")
    expect(page.locator("#send")).to_be_enabled()
    expect(waiting.locator(".body")).to_contain_text("988", timeout=15_000)
    expect(waiting.locator(".body")).to_contain_text("will join")

    # An agent claims the case: from then on the person is told a person has the conversation
    # open (never "will join"), while they wait and in the holding message.
    ann = sign_in(browser, "ann")
    ann.goto(URL + "/console?q=u-demo-care")
    ann.locator("li.case", has_text="u-demo-care").locator("a").click()
    ann.click("form[action$='/claim'] button")
    expect(ann.locator(".status")).to_contain_text("ann")
    page.fill("#text", "is someone there?")
    page.click("#send")
    waiting = page.locator("#log .msg").last
    expect(waiting.locator(".body")).to_contain_text("has your conversation open", timeout=15_000)
    expect(waiting.locator(".body")).not_to_contain_text("will join")
    # The agent replies while the person's turn waits: it arrives in that same bubble (or, on
    # a machine slower than the 2 s wait, in the person's next turn).
    ann.select_option("#template", index=1)
    page.fill("#text", "hello??")
    page.click("#send")
    waiting = page.locator("#log .msg").last
    expect(waiting.locator(".body")).to_contain_text("has your conversation open. Waiting for their reply")
    ann.click("form.reply button[type=submit]")
    try:
        expect(waiting.locator(".body")).to_contain_text("real person", timeout=10_000)
    except AssertionError:
        page.fill("#text", "still there?")
        page.click("#send")
        waiting = page.locator("#log .msg").last
        expect(waiting.locator(".body")).to_contain_text("real person", timeout=15_000)
    expect(waiting.locator(".who")).to_contain_text("a person from the team")
    shot(page, "13-demo-human-reply")

    # Resolved: the person is told they are talking to the AI again, then the AI answers.
    ann.select_option("form.resolve select[name=outcome]", "safe_with_support")
    ann.fill("form.resolve textarea[name=note]", "Talked it through; safe at home.")
    ann.click("form.resolve button[type=submit]")
    expect(ann.locator(".status")).to_contain_text("resolved")
    page.fill("#text", "thanks. can we talk about music?")
    page.click("#send")
    back = page.locator("#log .msg").last
    expect(back).to_contain_text("talking to the AI again", timeout=15_000)
    # The bubble names its author when the stream ends, which the news at its start does not
    # wait for: the model's reply after it is checked on the assistant side first (seconds in a
    # debug build on a busy machine).
    expect(back.locator(".who")).to_contain_text("demo companion (AI)", timeout=15_000)
    page.fill("#text", "what's your favourite song?")
    page.click("#send")
    after = page.locator("#log .msg").last
    expect(after.locator(".who")).to_contain_text("demo companion (AI)", timeout=15_000)
    expect(after).not_to_contain_text("talking to the AI again")
    shot(page, "14-demo-ai-again")
