"""Localised validation errors: which locale, which path, which words. Pure."""

import pytest

from rebond_intake.errors import localise, request_locale


@pytest.mark.parametrize(
    ("body", "accept", "expected"),
    [
        ({}, None, "fr"),
        ({"locale": "en"}, None, "en"),
        ({"locale": "fr"}, "en", "fr"),
        ({"locale": "xx"}, "en-US", "en"),
        ("not a dict", "fr-FR,en;q=0.5", "fr"),
        (None, "EN", "en"),
    ],
)
def test_request_locale(body, accept, expected) -> None:
    """Body locale first, then the first Accept-Language, French by default."""
    assert request_locale(body, accept) == expected


def test_cross_field_error_path_names_the_field_from_its_context() -> None:
    """A model-validator error located at the parent gets its `field` appended to the path."""
    error = {
        "type": "department_region_mismatch",
        "loc": ("body", "situation"),
        "ctx": {"field": "department"},
    }
    [entry] = localise([error], "en")
    assert entry["loc"] == ["body", "situation", "department"]
    assert entry["path"] == "situation.department"
    assert entry["msg"] == "This department is not in the chosen region."


def test_unknown_error_type_gets_a_generic_message_and_duplicates_merge() -> None:
    """An unforeseen error type still reads well; one entry per path."""
    errors = [{"type": "weird", "loc": ("body", "x")}, {"type": "weird2", "loc": ("body", "x")}]
    assert localise(errors, "fr") == [
        {
            "loc": ["body", "x"],
            "path": "x",
            "type": "weird",
            "msg": "Cette valeur n'est pas valide.",
        }
    ]
