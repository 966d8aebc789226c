"""What mypy says about flows: checked by ``mypy --strict`` (its ``files`` include tests/).

Each ``# type: ignore[arg-type]`` below marks a call mypy must reject; with
``warn_unused_ignores`` (part of ``--strict``), an ignore that is not needed
is itself an error, so this file fails the type check the day a wrong edge
stops being an error. ``assert_type`` pins what the decorator and the calls
return. tests/test_flow.py also runs ``well_typed()``, so the types asserted
here are the ones the run produces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_type

from wave_executor import Flow, FlowRun, Handle
from wave_executor.flow import Task0, Task1, Task2, Task3, TaskAny


@dataclass(frozen=True)
class Page:
    url: str
    text: str


flow = Flow("typing")


@flow.task
async def urls() -> list[str]:
    return ["a", "b"]


@flow.task
async def fetch(url: str) -> Page:
    return Page(url, url.upper())


@flow.task(retries=2, timeout=5.0)
def word_count(page: Page) -> int:
    return len(page.text.split())


@flow.task
def scale(count: int, factor: float) -> float:
    return count * factor


@flow.task(trigger_rule="all_done")
def label(prefix: str, value: float, page: Page) -> str:
    return f"{prefix}{value}{page.url}"


@flow.task
def keyword_only(count: int, *, sep: str) -> str:
    return sep.join(["x"] * count)


assert_type(urls, Task0[list[str]])
assert_type(fetch, Task1[str, Page])
assert_type(word_count, Task1[Page, int])
assert_type(scale, Task2[int, float, float])
assert_type(label, Task3[str, float, Page, str])
assert_type(keyword_only, TaskAny[str])
assert_type(fetch.with_options(name="home", retries=1), Task1[str, Page])


async def well_typed() -> FlowRun:
    """Every edge here type-checks; the run's outputs have the asserted types."""
    page = fetch("a")
    assert_type(page, Handle[Page])
    count = word_count(page)
    assert_type(count, Handle[int])
    scaled = scale(count, 0.5)  # a value where a value is expected
    assert_type(scaled, Handle[float])
    bigger = scale(count, count)  # Handle[int] where float is expected: int is a float
    text = label("n=", scaled, page, after=[bigger])
    assert_type(text, Handle[str])
    pages = flow.gather([fetch("b"), page])
    assert_type(pages, Handle[list[Page]])
    by_name = flow.gather_dict({"one": count, "two": word_count(fetch("c"))})
    assert_type(by_name, Handle[dict[str, int]])
    loose = keyword_only(count, sep="-")  # TaskAny: arguments not checked
    assert_type(loose, Handle[str])
    fetched = fetch.map(urls())  # one child per url, known only when the run gets there
    assert_type(fetched, Handle[list[Page]])
    counts = word_count.map_values(flow.gather_dict({"x": page}))
    assert_type(counts, Handle[dict[str, int]])
    scaled_all = scale.map([1, 2], 2.0)
    assert_type(scaled_all, Handle[list[float]])

    run = await flow.run()
    assert_type(run[page], Page)
    assert_type(run[count], int)
    assert_type(run[text], str)
    assert_type(run[pages], list[Page])
    assert_type(run[by_name], dict[str, int])
    assert_type(run.get(text, None), str | None)
    assert run[text] == "n=0.5a" and run[pages][0].url == "b" and run[by_name]["two"] == 1
    assert run[loose] == "x"
    assert_type(run[fetched], list[Page])
    assert_type(run[counts], dict[str, int])
    assert [p.url for p in run[fetched]] == ["a", "b"]
    assert run[counts] == {"x": 1} and run[scaled_all] == [2.0, 4.0]
    return run


def wrong_edges() -> None:
    """Each of these calls is a mypy error (never run: it only has to type-check as wrong)."""
    wrong = Flow("wrong")

    @wrong.task
    async def fetch(url: str) -> Page:
        return Page(url, "")

    @wrong.task
    def count(page: Page) -> int:
        return 0

    n = count(fetch("u"))
    fetch(n)  # type: ignore[arg-type]  # Handle[int] where str is expected
    count(n)  # type: ignore[arg-type]  # Handle[int] where Page is expected
    count("not a page")  # type: ignore[arg-type]  # a value of the wrong type
    count(fetch("u"), fetch("v"))  # type: ignore[call-arg, arg-type]  # one argument too many
    fetch()  # type: ignore[call-arg]  # one argument missing
    fetch(url="u")  # type: ignore[call-arg]  # parameters are positional
    page: Page = fetch("u")  # type: ignore[assignment]  # a handle is not its value
    del page
    fetch(wrong.gather([fetch("a")]))  # type: ignore[arg-type]  # a list[Page] is not a str
    fetch(n, after=[n])  # type: ignore[arg-type]  # after= does not excuse the argument
    fetch.map(n)  # type: ignore[arg-type]  # an int is not a sequence of str
    fetch.map(wrong.gather([n]))  # type: ignore[list-item]  # a list[int] is not a list[str]
    fetch.map_values(wrong.gather(["u"]))  # type: ignore[arg-type]  # a list is not a mapping
    pages: Handle[dict[int, Page]] = fetch.map(["u"])  # type: ignore[assignment]  # a list
    del pages


def wrong_reads(run: FlowRun, count: Handle[int]) -> None:
    """Reading a run is typed too."""
    text: str = run[count]  # type: ignore[assignment]  # run[Handle[int]] is an int
    del text
