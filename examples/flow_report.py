"""A site report as a typed Flow: fetch pages at once, summarize each, reduce, clean up.

The site is a dict served by a fake async ``get`` with a network-like
delay, so the example needs no network. The index page names the pages to
fetch, so how many fetches there are is known only at run time:
``fetch.map`` makes one child task per page. One page fails its first
request (a 503, retried); the second run's index links to a page that does
not exist, so its report is skipped, and the scratch directory is removed
all the same (``trigger_rule="all_done"``).

Run it with ``python examples/flow_report.py``; docs/flow.md walks through it.
"""

import asyncio
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from wave_executor import Flow, Handle, RetryPolicy, TaskStatus, WaveConfig
from wave_executor.flow import task

SITE = {
    "/": "Acme docs. Start with /install, then /guide; see /faq.",
    "/install": "Install Acme with pip, then read /guide.",
    "/guide": "Build a flow, run it, read the results. Back to /.",
    "/faq": "Questions and answers about Acme.",
    "/archive": "Old pages: /guide and /gone.",
}
FLAKY = {"/guide"}  # every other request for these fails with a 503
requests: Counter[str] = Counter()


class ServerError(Exception):
    """A 5xx answer: worth retrying."""


async def get(url: str) -> str:
    """The fake HTTP GET: a short wait, then the page, a 404 or a 503."""
    await asyncio.sleep(0.01)
    requests[url] += 1
    if url in FLAKY and requests[url] % 2 == 1:
        raise ServerError(f"503 for {url}")
    if url not in SITE:
        raise LookupError(f"404 for {url}")
    return SITE[url]


def links(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(re.findall(r"/[a-z]*", text)))


class Page(NamedTuple):
    url: str
    text: str


class Summary(NamedTuple):
    url: str
    words: int
    links: tuple[str, ...]


@task
def make_scratch() -> str:
    """A scratch directory for the raw pages (a plain function: it runs on a thread)."""
    return tempfile.mkdtemp(prefix="site-report-")


@task
async def list_pages(index_url: str) -> list[str]:
    """The pages the index links to, itself included."""
    return [index_url, *(u for u in links(await get(index_url)) if u != index_url)]


@task(
    retries=RetryPolicy(max_retries=2, base_delay=0.01, retry_on=(ServerError,)),
    timeout=2.0,
    group="site",  # at most WaveConfig.specialist_budgets["site"] requests at once
)
async def fetch(url: str, scratch: str) -> Page:
    text = await get(url)
    name = url.strip("/").replace("/", "_") or "index"
    await asyncio.to_thread(Path(scratch, name + ".txt").write_text, text)
    return Page(url, text)


@task
def summarize(page: Page) -> Summary:
    return Summary(page.url, len(page.text.split()), links(page.text))


@task
def report(summaries: list[Summary]) -> str:
    total = sum(s.words for s in summaries)
    lines = [f"{len(summaries)} pages, {total} words"]
    for s in sorted(summaries, key=lambda s: s.url):
        lines.append(f"{s.url}: {s.words} words, links to {' '.join(s.links) or 'nothing'}")
    return "\n".join(lines)


@task(trigger_rule="all_done")
def remove_scratch(scratch: str) -> str:
    """Runs once the report is done, whether it succeeded or not."""
    shutil.rmtree(scratch)
    return scratch


def site_report(index_url: str) -> tuple[Flow, Handle[str], Handle[str]]:
    """The flow of one report; the handles of the report and of the cleanup."""
    with Flow(f"report of {index_url}") as flow:
        scratch = make_scratch()
        pages = fetch.map(list_pages(index_url), scratch)  # one child per page
        text = report(summarize.map(pages))
        removed = remove_scratch(scratch, after=[text])
    return flow, text, removed


def gone(path: str) -> bool:
    return not Path(path).exists()


CONFIG = WaveConfig(retry_policy=RetryPolicy(max_retries=0), specialist_budgets={"site": 2})


async def main() -> None:
    flow, text, removed = site_report("/")
    run = await flow.run(config=CONFIG)
    print(run[text])
    assert run.succeeded and run[text].startswith("4 pages, 32 words")
    assert gone(run[removed])
    assert requests["/guide"] == 2  # a 503, then the page

    flow, text, removed = site_report("/archive")
    run = await flow.run(config=CONFIG)
    print(run.task_result(text).status, "-", run.task_result(text).error)
    assert not run.succeeded and run.task_result(text).status == TaskStatus.SKIPPED
    assert gone(run[removed])  # cleaned up all the same


if __name__ == "__main__":
    asyncio.run(main())
