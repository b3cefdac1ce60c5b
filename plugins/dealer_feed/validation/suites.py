"""Great Expectations suites as code: one per dataset, built from a list of named rules.

No hand-edited JSON: a rule is a `Rule` (name, one-line description, the GX expectation
that checks it, the raw column whose value is shown as an example). `build_suite` turns a
dataset's rules into a `gx.ExpectationSuite`; each expectation carries its rule name in
`meta["rule"]`, which is how results are mapped back to rules.

What GX sees is a *check frame* (see `core.py`): the key string columns with blank values
turned into nulls, `_batch` (the dealer whose batch a row came from), typed columns where a
range is checked, and one boolean `<column>__parses` column per typed column (False where
a value was present but did not parse, see `opentrack.values`). GX column expectations
skip nulls, so every format expectation is paired with a presence expectation where the
value is required.

Nothing here imports GX at module level: `build_suite` imports it when called.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dealer_feed.contract.identity import VIN_REGEX
from dealer_feed.opentrack.values import DATE_TIME_COLUMNS

MIN_MODEL_YEAR = 1900
MODEL_YEARS_AHEAD = 2
"""A model year may be at most the run's year + 2 (next year's models are sold early)."""

BATCH_COLUMN = "_batch"
"""Check-frame column holding the dealer id whose batch the row came from."""


def parses_column(column: str) -> str:
    return f"{column}__parses"


@dataclass(frozen=True)
class Rule:
    """One validation rule: a name (what quarantine rows list), and its GX expectation."""

    name: str
    description: str
    expectation: str
    """GX expectation class name, e.g. `ExpectColumnValuesToNotBeNull`."""
    kwargs: tuple[tuple[str, Any], ...]
    example_column: str
    """Raw column whose value is shown as an example of a failure."""

    def build(self, gx_module: Any) -> Any:
        cls = getattr(gx_module.expectations, self.expectation)
        return cls(**self.kwargs_dict(), meta={"rule": self.name}, description=self.description)

    def kwargs_dict(self) -> dict[str, Any]:
        """The expectation's keyword arguments, lists as lists (GX and JSON want lists; the
        frozen rule keeps tuples so that it stays hashable)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.kwargs}


def _rule(name: str, description: str, expectation: str, example_column: str, **kwargs: Any) -> Rule:
    frozen = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(kwargs.items()))
    return Rule(name, description, expectation, frozen, example_column)


def present(column: str) -> Rule:
    return _rule(
        f"{column}_present",
        f"{column} is present (not null, not blank)",
        "ExpectColumnValuesToNotBeNull",
        column,
        column=column,
    )


def parses(column: str, what: str) -> Rule:
    return _rule(
        f"{column}_parses",
        f"{column}, when present, is {what}",
        "ExpectColumnValuesToBeInSet",
        column,
        column=parses_column(column),
        value_set=[True],
    )


FORBIDDEN_CHARACTER_COLUMN = "_forbidden_character_in"
"""Check-frame column: per row, the fields holding U+FFFD (';'-joined), null when none."""


def forbidden_character() -> Rule:
    """No field holds a character XML 1.0 forbids. The parser turned each one (NUL, other C0
    controls, `&#0;`...) into U+FFFD (opentrack.parse.replace_forbidden_characters); the
    row is quarantined instead of the document failing. Examples name the fields."""
    return _rule(
        "forbidden_character",
        "no field holds a character XML 1.0 forbids (NUL, control characters; U+FFFD after parsing); "
        "examples name the field",
        "ExpectColumnValuesToBeNull",
        FORBIDDEN_CHARACTER_COLUMN,
        column=FORBIDDEN_CHARACTER_COLUMN,
    )


def dealer_rules(dealer_ids: Sequence[str]) -> list[Rule]:
    """dealer_id present, one of the group's dealers, and the dealer whose batch it is."""
    return [
        present("dealer_id"),
        _rule(
            "dealer_id_known",
            "dealer_id is one of the group's dealers",
            "ExpectColumnValuesToBeInSet",
            "dealer_id",
            column="dealer_id",
            value_set=sorted(dealer_ids),
        ),
        _rule(
            "dealer_id_matches_batch",
            "dealer_id is the dealer whose feed the row came from",
            "ExpectColumnPairValuesToBeEqual",
            "dealer_id",
            column_A="dealer_id",
            column_B=BATCH_COLUMN,
            ignore_row_if="either_value_is_missing",
        ),
    ]


PARSE_WHAT = {
    "date": "a yyyyMMdd calendar date (0 = empty)",
    "date_time": "a yyyyMMddHHmm date and time, UTC (0 = empty)",
    "int": "an integer",
    "decimal": "a plain decimal number",
    "flag": "Y or N",
}


def typed_kind(type_name: str) -> str:
    if type_name.startswith("date"):
        return "date"
    if type_name in ("bool",):
        return "flag"
    if type_name.startswith("int"):
        return "int"
    return "decimal"


def vehicle_rules(dealer_ids: Sequence[str], run_year: int, typed_columns: dict[str, str]) -> list[Rule]:
    """The vehicles suite (SPEC "The feed", docs/VALIDATION.md).

    `typed_columns` maps each typed raw column to its arrow type name (e.g. `date32[day]`).
    """
    rules = [
        *dealer_rules(dealer_ids),
        present("vin"),
        _rule(
            "vin_format",
            "VIN is 17 characters of [A-HJ-NPR-Z0-9]",
            "ExpectColumnValuesToMatchRegex",
            "vin",
            column="vin",
            regex=VIN_REGEX,
        ),
        _rule(
            "vin_unique",
            "VIN appears once in the dealer's batch (every copy of a repeated VIN fails)",
            "ExpectCompoundColumnsToBeUnique",
            "vin",
            column_list=[BATCH_COLUMN, "vin"],
            ignore_row_if="any_value_is_missing",
        ),
        present("stock_number"),
        present("type_nu"),
        forbidden_character(),
    ]
    for column, type_name in typed_columns.items():
        rules.append(parses(column, PARSE_WHAT[typed_kind(type_name)]))
    rules.append(
        _rule(
            "model_year_range",
            f"model_year, when present, is within {MIN_MODEL_YEAR}..{run_year + MODEL_YEARS_AHEAD}",
            "ExpectColumnValuesToBeBetween",
            "model_year",
            column="model_year",
            min_value=MIN_MODEL_YEAR,
            max_value=run_year + MODEL_YEARS_AHEAD,
        )
    )
    return rules


def keyed_rules(dealer_ids: Sequence[str], key_column: str, date_columns: Sequence[str]) -> list[Rule]:
    """The parts / repair_orders suites: dealer checks, key present, dates parse."""
    rules = [*dealer_rules(dealer_ids), present(key_column), forbidden_character()]
    rules += [parses(c, PARSE_WHAT["date_time" if c in DATE_TIME_COLUMNS else "date"]) for c in date_columns]
    return rules


def build_suite(gx_module: Any, name: str, rules: Sequence[Rule]) -> Any:
    """A `gx.ExpectationSuite` with one expectation per rule (rule name in meta)."""
    suite = gx_module.ExpectationSuite(name=name)
    for rule in rules:
        suite.add_expectation(rule.build(gx_module))
    return suite

