"""The metric names a PromQL expression reads, and the series names a /metrics page holds.

Not a PromQL parser: enough of the language to find every metric selector in
the dashboard's expressions. Strings, label matchers (``{...}``), ranges and
subqueries (``[...]``), ``offset`` clauses and the label lists of ``by``,
``without``, ``on``, ``ignoring``, ``group_left`` and ``group_right`` are taken
out first; what is left that names neither a function, an aggregation nor a
keyword, and is not followed by ``(``, is a metric name.
"""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-z]+", re.IGNORECASE)
_LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_WORDS = re.compile(r"(?<![0-9.])[A-Za-z_:][A-Za-z0-9_:]*")
# Aggregations and keywords may stand without "(" after them ("sum by (q) (...)").
_NOT_METRICS = frozenset(
    {
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
        "bottomk", "topk", "quantile", "limitk", "limit_ratio",
        "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
        "and", "or", "unless", "atan2", "inf", "nan", "Inf", "NaN",
    }
)  # fmt: skip
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s*,")


def metric_names(expr: str) -> set[str]:
    """Every metric an expression selects."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    text = _LABEL_LISTS.sub(r"\1", text)
    names = set()
    for match in _WORDS.finditer(text):
        word = match.group()
        if word in _NOT_METRICS or text[match.end() :].lstrip().startswith("("):
            continue
        names.add(word)
    return names


def template_metric(query: str) -> str:
    """The metric of a Grafana ``label_values(metric, label)`` variable query."""
    found = _LABEL_VALUES.match(query)
    if found is None:
        raise ValueError(f"not a label_values(metric, label) query: {query!r}")
    return found[1]


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "gauge": ("",),
    "untyped": ("",),
}


def exported_names(page: str) -> set[str]:
    """Every series name a /metrics page declares (with or without samples yet)."""
    names = set()
    for family in text_string_to_metric_families(page):
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


def samples(page: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The samples of a /metrics page by series name: labels and value."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out
