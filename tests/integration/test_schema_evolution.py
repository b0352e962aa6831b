"""Schema evolution: an index created by the previous template takes the field the current one adds."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
from elasticsearch import BadRequestError

from pipeline.provision import IncompatibleMapping, MappingUpdate, prepare_cluster, update_mappings
from pipeline.sinks.elasticsearch import apply_index_template, detect_features, index_name, render_template
from pipeline.tracking import wait_processed
from tests.integration.conftest import Pipeline, make_post

pytestmark = pytest.mark.integration

NEW_FIELD = "region_name"
"""The field the previous template lacked; the worker writes it for every post with a recognised region."""
POSTED = datetime(2019, 3, 14, 9, 0, tzinfo=UTC)
"""A month of its own: the index is this test's, created from the previous template."""


def test_an_index_from_the_previous_template_takes_a_post_with_the_new_field(pipeline: Pipeline) -> None:
    settings, es = pipeline.settings, pipeline.es
    index = index_name(settings, POSTED)
    current = render_template(settings, detect_features(es))
    previous = copy.deepcopy(current)
    del previous["template"]["mappings"]["properties"][NEW_FIELD]
    es.options(ignore_status=404).indices.delete(index=index)
    try:
        es.indices.put_index_template(name=settings.index_prefix, **previous)
        es.indices.create(index=index)
    finally:  # the other tests' indices come from the current template
        apply_index_template(settings, es)
    assert NEW_FIELD not in es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    with pytest.raises(BadRequestError, match="strict_dynamic_mapping_exception"):
        es.index(index=index, id="probe", document={NEW_FIELD: "Kab. Serang"})

    provisioned = prepare_cluster(settings, pipeline.endpoints)

    assert MappingUpdate(index=index, added=[NEW_FIELD]) in provisioned.mappings
    mapping = es.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["dynamic"] == "strict"
    assert mapping["properties"][NEW_FIELD] == {"type": "keyword"}
    post = make_post("jalan di ciruas rusak parah, dpupr kapan dibenerin", created_at=POSTED.isoformat())
    key = pipeline.send_post(post)
    tally = wait_processed(settings, pipeline.endpoints.kafka, es, [key], timeout=180)
    assert tally.indexed == 1, tally
    es.indices.refresh(index=index)
    hits = es.search(index=index, query={"term": {NEW_FIELD: "Kab. Serang"}})["hits"]["hits"]
    assert [hit["_id"] for hit in hits] == [key]


def test_a_type_change_is_reported_with_index_field_and_both_types(pipeline: Pipeline) -> None:
    es = pipeline.es
    index = "test-evolution-retyped"
    es.options(ignore_status=404).indices.delete(index=index)
    es.indices.create(
        index=index, mappings={"dynamic": "strict", "properties": {"likes": {"type": "keyword"}}}
    )
    expected = f"{index}: likes is keyword, the template says integer"
    try:
        with pytest.raises(IncompatibleMapping, match=expected):
            update_mappings(es, index, {"likes": {"type": "integer"}, "shares": {"type": "integer"}})
        # nothing was half-applied: the compatible field waits for the conflict to be resolved
        assert "shares" not in es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    finally:
        es.indices.delete(index=index)
