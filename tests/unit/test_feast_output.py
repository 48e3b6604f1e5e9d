"""Feast's coloured materialization output reaches our output as plain text."""

from __future__ import annotations

from ml.features.store import _plain_feast_output


def test_colour_codes_and_blank_lines_are_dropped(capsys) -> None:
    with _plain_feast_output():
        print("Materializing \x1b[1m\x1b[32m2\x1b[0m feature views\n")
        print("\x1b[1m\x1b[32mcustomer_profile\x1b[0m:")
    assert capsys.readouterr().out == "Materializing 2 feature views\ncustomer_profile:\n"


def test_output_is_passed_on_even_when_feast_fails(capsys) -> None:
    try:
        with _plain_feast_output():
            print("\x1b[31mhalf way\x1b[0m")
            raise RuntimeError("registry unreachable")
    except RuntimeError:
        pass
    assert capsys.readouterr().out == "half way\n"
