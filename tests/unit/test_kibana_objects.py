"""The shipped Kibana saved objects, checked without a Kibana: they parse, every reference resolves, every
Lens column reads a field the index template maps with an aggregatable type."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.kibana.aggregations import kql_query, panel_aggregations
from pipeline.kibana.lens import RECORDS, LensPanel
from pipeline.kibana.saved_objects import (
    AGENCY_PANELS,
    ALERTS,
    CITIZENS,
    DATA_VIEWS,
    OVERVIEW_PANELS,
    POSTS,
    RESPONSES,
    TOPICS,
    all_panels,
    to_ndjson,
)
from pipeline.settings import REPO_ROOT
from pipeline.sinks.elasticsearch import TEMPLATES

NDJSON = REPO_ROOT / "deploy" / "kibana" / "pantau-saved-objects.ndjson"
TEMPLATE_OF = {
    POSTS: "posts-template.json",
    TOPICS: "topics-template.json",
    ALERTS: "alerts-template.json",
    RESPONSES: "responses-template.json",
}
AGGREGATABLE = {
    "keyword",
    "date",
    "long",
    "integer",
    "short",
    "byte",
    "float",
    "double",
    "boolean",
    "geo_point",
}
LENS_TYPE = {"string": {"keyword"}, "date": {"date"}, "boolean": {"boolean"}}


def _objects() -> list[dict[str, Any]]:
    return [json.loads(line) for line in NDJSON.read_text(encoding="utf-8").splitlines() if line.strip()]


def _mapping(data_view: str) -> dict[str, str] | None:
    """Field path → type from the index template, or None when the template is not on this branch yet."""
    template = TEMPLATES.joinpath(TEMPLATE_OF[data_view])
    if not template.is_file():
        return None
    fields: dict[str, str] = {}

    def walk(properties: dict[str, Any], prefix: str) -> None:
        for name, spec in properties.items():
            if "properties" in spec:
                walk(spec["properties"], f"{prefix}{name}.")
            elif "type" in spec:
                if spec.get("index") is not False and spec.get("enabled") is not False:
                    fields[prefix + name] = spec["type"]
                for sub, subspec in spec.get("fields", {}).items():
                    fields[f"{prefix}{name}.{sub}"] = subspec["type"]

    walk(json.loads(template.read_text())["template"]["mappings"]["properties"], "")
    return fields


def _lens_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in json.loads(dashboard["attributes"]["panelsJSON"]) if p["type"] == "lens"]


def test_the_committed_file_is_what_the_code_builds() -> None:
    assert NDJSON.read_text(encoding="utf-8") == to_ndjson(), "run: pantau kibana export " + str(NDJSON)


def test_every_object_has_a_type_an_id_and_a_title() -> None:
    objects = _objects()
    assert len({(o["type"], o["id"]) for o in objects}) == len(objects)
    for obj in objects:
        assert obj["type"] and obj["id"] and obj["attributes"]["title"], obj["id"]


def test_data_views_have_ids_equal_to_their_titles() -> None:
    views = {o["id"]: o for o in _objects() if o["type"] == "index-pattern"}
    assert set(views) == set(DATA_VIEWS) == {POSTS, TOPICS, ALERTS, RESPONSES}
    for id_, view in views.items():
        assert view["attributes"]["title"] == id_
        assert view["attributes"]["timeFieldName"]


def test_every_reference_resolves() -> None:
    objects = _objects()
    present = {(o["type"], o["id"]) for o in objects}
    for obj in objects:
        refs = list(obj["references"])
        if obj["type"] == "dashboard":
            for panel in _lens_panels(obj):
                inner = panel["embeddableConfig"]["attributes"]["references"]
                refs += inner
                names = {r["name"] for r in obj["references"]}
                assert {f"{panel['panelIndex']}:{r['name']}" for r in inner} <= names
                layers = panel["embeddableConfig"]["attributes"]["state"]["datasourceStates"]["formBased"]
                assert {f"indexpattern-datasource-layer-{lid}" for lid in layers["layers"]} == {
                    r["name"] for r in inner
                }
        for ref in refs:
            assert (ref["type"], ref["id"]) in present, (obj["id"], ref)
        if obj["type"] == "search":
            source = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
            assert source["indexRefName"] in {r["name"] for r in obj["references"]}


def test_the_overview_has_the_eight_asked_for_panels_by_value() -> None:
    overview = next(o for o in _objects() if o["id"] == "pantau-overview")
    panels = _lens_panels(overview)
    assert len(panels) >= 8
    assert all("attributes" in p["embeddableConfig"] and "panelRefName" not in p for p in panels)
    keys = {p["panelIndex"] for p in panels}
    assert keys >= {
        "volume-by-agency",
        "sentiment-share",
        "category-region",
        "negative-by-agency",
        "platform-mix",
        "emerging-topics",
        "alerts-timeline",
        "latest-negative",
    }
    kinds = {p["embeddableConfig"]["attributes"]["visualizationType"] for p in panels}
    assert kinds == {"lnsXY", "lnsHeatmap", "lnsPie", "lnsDatatable"}


def test_the_agency_dashboard_is_driven_by_a_control_on_agencies() -> None:
    agency = next(o for o in _objects() if o["id"] == "pantau-agency")
    controls = json.loads(agency["attributes"]["controlGroupInput"]["panelsJSON"])
    (control,) = controls.values()
    assert control["type"] == "optionsListControl"
    assert control["explicitInput"]["fieldName"] == "agencies"
    ref = f"controlGroup_{control['explicitInput']['id']}:optionsListDataView"
    assert {"name": ref, "type": "index-pattern", "id": POSTS} in agency["references"]
    assert _mapping(POSTS)["agencies"] == "keyword"  # type: ignore[index]


def test_chart_accessors_name_columns_of_their_layer() -> None:
    for dashboard in (o for o in _objects() if o["type"] == "dashboard"):
        for panel in _lens_panels(dashboard):
            state = panel["embeddableConfig"]["attributes"]["state"]
            (layer,) = state["datasourceStates"]["formBased"]["layers"].values()
            assert set(layer["columnOrder"]) == set(layer["columns"])
            text = json.dumps(state["visualization"])
            for column_id in layer["columns"]:
                assert column_id in text, (panel["panelIndex"], column_id)
            for column in layer["columns"].values():
                order = column.get("params", {}).get("orderBy", {}).get("columnId")
                assert order is None or order in layer["columns"]


@pytest.mark.parametrize("panel", all_panels(), ids=lambda p: p.key)
def test_every_lens_column_reads_an_aggregatable_mapped_field(panel: LensPanel) -> None:
    mapping = _mapping(panel.data_view)
    if mapping is None:
        # The template comes with another issue; the panel says it waits, and is checked once it lands.
        assert panel.waits_for == panel.data_view
        return
    for column in panel.columns:
        if column.field == RECORDS:
            assert column.operation == "count"
            continue
        assert column.field in mapping, (panel.key, column.field)
        assert mapping[column.field] in AGGREGATABLE, (panel.key, column.field, mapping[column.field])
        allowed = LENS_TYPE.get(column.data_type)
        if allowed and (column.bucketed or column.data_type == "date"):
            assert mapping[column.field] in allowed, (panel.key, column.field, column.data_type)
    query = kql_query(panel.kql)  # refuses a filter the aggregation check could not run
    for clause in [*query.get("bool", {}).get("filter", []), *query.get("bool", {}).get("must_not", [])]:
        inner = next(iter(clause.values()))
        field = inner["field"] if "exists" in clause else next(iter(inner))
        assert mapping.get(field) in AGGREGATABLE, (panel.key, field)  # a KQL field must be searchable
    panel_aggregations(panel)
    assert panel.waits_for is None, f"the {panel.data_view} template exists now: drop the panel's waits_for"


def test_the_time_field_of_each_data_view_is_a_mapped_date() -> None:
    for title, (_, time_field) in DATA_VIEWS.items():
        mapping = _mapping(title)
        if mapping is not None:
            assert mapping[time_field] == "date", title


def test_waiting_panels_are_the_alerts_and_responses_ones() -> None:
    waiting = {p.key: p.waits_for for p in OVERVIEW_PANELS + AGENCY_PANELS if p.waits_for}
    assert set(waiting.values()) <= {ALERTS, RESPONSES}
    for panel in all_panels():
        if panel.waits_for:
            assert "Menunggu indeks" in panel.panel()["embeddableConfig"]["attributes"]["description"]


def test_kql_outside_the_simple_form_is_refused() -> None:
    assert kql_query("") == {"match_all": {}}
    assert kql_query("a:b and c:true") == {"bool": {"filter": [{"term": {"a": "b"}}, {"term": {"c": True}}]}}
    with pytest.raises(ValueError):
        kql_query("a:b or c:d")


def test_kql_leaves_out_what_is_missing_with_not_exists() -> None:
    assert kql_query("a:b and not official_account:*") == {
        "bool": {"filter": [{"term": {"a": "b"}}], "must_not": [{"exists": {"field": "official_account"}}]}
    }
    with pytest.raises(ValueError):
        kql_query("not a:b")


def test_posts_panels_leave_out_official_accounts_and_count_by_agencies() -> None:
    """Volume, sentiment and complaints count citizens' posts only: an official account's post (the
    contract's ``official_account`` set) is left out by every posts panel and the complaints search."""
    posts_panels = [p for p in all_panels() if p.data_view == POSTS]
    assert len(posts_panels) >= 10
    for panel in posts_panels:
        assert CITIZENS in panel.kql, panel.key
        assert kql_query(panel.kql)["bool"]["must_not"] == [{"exists": {"field": "official_account"}}]
        assert all(c.field != "mentions" for c in panel.columns), panel.key
    by_agency = [c for p in posts_panels for c in p.columns if "agenc" in c.name]
    assert by_agency and all(c.field == "agencies" for c in by_agency)
    assert _mapping(POSTS)["official_account"] == "keyword"  # type: ignore[index]
    searches = {o["id"]: o for o in _objects() if o["type"] == "search"}
    source = json.loads(
        searches["pantau-negative-public-service"]["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"]
    )
    assert CITIZENS in source["query"]["query"]
