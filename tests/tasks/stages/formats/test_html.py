"""How trafilatura's extraction becomes lines (``tasks/stages/formats/html.py``): tables and the title."""

from __future__ import annotations

import pytest

from corpusclean.tasks.config import ReadConfig
from corpusclean.tasks.stages.formats.html import extract, with_title_line

pytest.importorskip("trafilatura")

PROSE = ("Our small office keeps two hives on the roof, and the bees have become an unexpected part of the "
         "working week. Every Friday somebody climbs the ladder with a smoker and checks the frames. ")


def lines_of(body: str, title: str = "Keeping bees on an office roof", config: ReadConfig = ReadConfig()) -> list[str]:
    html = (f"<html><head><title>{title}</title></head><body>"
            f"<div class='menu'><a href='/'>Home</a> <a href='/shop'>Shop</a></div>{body}</body></html>")
    found = extract(html, config)
    assert found is not None
    return found[0].splitlines()


def test_a_layout_cell_keeps_its_paragraphs_and_line_breaks_as_lines() -> None:
    lines = lines_of(
        "<table><tr><td><h2>The first year</h2><p>" + PROSE + "</p><p>" + PROSE.upper() + "</p>"
        "When: every Friday<br>Where: the roof</td></tr></table>"
    )
    assert "The first year" in lines
    assert PROSE.strip() in lines and PROSE.upper().strip() in lines
    assert "When: every Friday" in lines and "Where: the roof" in lines
    assert not any(line.startswith("|") for line in lines)


def test_a_cell_of_short_items_only_stays_one_line() -> None:
    from lxml import etree

    from corpusclean.tasks.stages.formats.html import body_text

    body = etree.fromstring(
        "<body><table><row><cell>Home<lb/>Shop<lb/>About us</cell>"
        f"<cell><p>{PROSE}</p><p>Second paragraph of the article, long enough to be prose.</p></cell></row></table></body>"
    )
    lines = body_text(body).splitlines()
    assert PROSE.strip() in lines and "Second paragraph of the article, long enough to be prose." in lines
    assert "Home Shop About us" in lines  # the menu beside the article: one line of its own


def test_a_data_table_with_header_cells_has_a_line_per_cell() -> None:
    lines = lines_of(
        "<article><p>" + PROSE + "</p><table><tr><th>Hive</th><th>Frames</th></tr>"
        "<tr><td>North</td><td>11</td></tr><tr><td>South</td><td>9</td></tr></table><p>" + PROSE + "</p></article>"
    )
    for cell in ("Hive", "Frames", "North", "11", "South", "9"):
        assert cell in lines
    assert not any("---" in line or line.startswith("|") for line in lines)


def test_a_table_of_plain_cells_keeps_its_rows_and_drops_empty_ones() -> None:
    lines = lines_of(
        "<article><p>" + PROSE + "</p><table><tr><td>North hive</td><td>eleven frames</td></tr>"
        "<tr><td> </td><td></td></tr><tr><td>South hive</td><td>nine frames</td></tr></table>"
        "<p>" + PROSE + "</p></article>"
    )
    rows = [line for line in lines if line.startswith("|")]
    assert any("North hive" in row and "eleven frames" in row for row in rows)
    assert all(any(c.isalnum() for c in row) for row in rows)  # no empty row


def test_the_title_comes_first_when_the_extraction_left_it_out() -> None:
    body = "<h1>Bees on the roof</h1><div class='sidebar'>x</div><article><p>" + PROSE + "</p><p>" + PROSE + "</p></article>"
    lines = lines_of(body, title="Bees on the roof")
    assert lines[0] == "Bees on the roof" and lines.count("Bees on the roof") == 1
    # trafilatura alone leaves the headline out (it stands outside the article)
    assert "Bees on the roof" not in lines_of(body, title="Bees on the roof", config=ReadConfig(html_title=False))


def test_with_title_line() -> None:
    assert with_title_line("Body line.", "A  title ") == "A title\nBody line."
    assert with_title_line("Intro\nA title\nBody.", "A title") == "Intro\nA title\nBody."  # already a line
    assert with_title_line("Body.", None) == "Body." and with_title_line("Body.", "  ") == "Body."
