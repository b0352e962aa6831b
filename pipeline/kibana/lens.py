"""Lens panels as data: each panel's columns, its data view, its filter and the question it answers.

The JSON follows the by-value Lens panels of Kibana's own sample dashboards (the eCommerce sample data
set exported by 8.11+: ``formBased`` layers, ``indexpattern-datasource-layer-<layer id>`` references);
the panel ``version`` says which Kibana shaped the state, so 8.15 migrates it on import.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

RECORDS = "___records___"
"""Lens's source field of a plain document count."""
PANEL_VERSION = "8.11.0"
NAMESPACE = uuid.UUID("5b0c6c1e-59a8-4d0e-9f1f-7a2f0f3d9b19")

Operation = Literal["terms", "date_histogram", "count", "max", "min", "sum", "average", "median"]
Visualization = Literal["lnsXY", "lnsHeatmap", "lnsPie", "lnsDatatable"]
BUCKETED: frozenset[str] = frozenset({"terms", "date_histogram"})


def stable_id(*parts: str) -> str:
    """Deterministic UUIDs, so the NDJSON does not change between builds."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


@dataclass(frozen=True)
class Column:
    """One Lens column: a bucket (terms, date histogram) or a metric."""

    name: str
    operation: Operation
    field: str = RECORDS
    label: str = ""
    data_type: Literal["string", "date", "number", "boolean"] = "number"
    size: int = 10
    order_by: str | None = None
    """for terms: the name of the metric column that orders the buckets"""
    interval: str = "1d"

    @property
    def bucketed(self) -> bool:
        return self.operation in BUCKETED


def terms(name: str, field: str, label: str, size: int, order_by: str) -> Column:
    return Column(name, "terms", field, label, "string", size=size, order_by=order_by)


def histogram(name: str, field: str, label: str, interval: str = "1d") -> Column:
    return Column(name, "date_histogram", field, label, "date", interval=interval)


def count(name: str = "count", label: str = "Jumlah") -> Column:
    return Column(name, "count", RECORDS, label)


@dataclass(frozen=True)
class LensPanel:
    """A by-value Lens panel; ``x``/``y``/``split`` name the bucket columns' roles in the chart."""

    key: str
    title: str
    question: str
    data_view: str
    visualization: Visualization
    columns: tuple[Column, ...]
    grid: tuple[int, int, int, int]
    kql: str = ""
    series: str = "bar_stacked"
    waits_for: str | None = None
    """the index this panel reads that another issue creates; the panel is empty until it exists"""

    @property
    def layer_id(self) -> str:
        return stable_id(self.key, "layer")

    def column_id(self, name: str) -> str:
        return stable_id(self.key, "column", name)

    @property
    def buckets(self) -> list[Column]:
        return [c for c in self.columns if c.bucketed]

    @property
    def metrics(self) -> list[Column]:
        return [c for c in self.columns if not c.bucketed]

    def lens_column(self, column: Column) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": column.label or column.name,
            "dataType": column.data_type,
            "operationType": column.operation,
            "sourceField": column.field,
            "isBucketed": column.bucketed,
            "scale": "ordinal" if column.operation == "terms" else "interval" if column.bucketed else "ratio",
            "customLabel": bool(column.label),
        }
        if column.operation == "terms":
            out["params"] = {
                "size": column.size,
                "orderBy": {"type": "column", "columnId": self.column_id(column.order_by or "count")},
                "orderDirection": "desc",
                "otherBucket": False,
                "missingBucket": False,
                "parentFormat": {"id": "terms"},
            }
        elif column.operation == "date_histogram":
            out["params"] = {"interval": column.interval, "includeEmptyRows": True, "dropPartials": False}
        else:
            out["params"] = {"emptyAsNull": True}
        return out

    def layer(self) -> dict[str, Any]:
        return {
            "columns": {self.column_id(c.name): self.lens_column(c) for c in self.columns},
            "columnOrder": [self.column_id(c.name) for c in self.columns],
            "incompleteColumns": {},
        }

    def visualization_state(self) -> dict[str, Any]:
        buckets = [self.column_id(c.name) for c in self.buckets]
        metrics = [self.column_id(c.name) for c in self.metrics]
        base = {"layerId": self.layer_id, "layerType": "data"}
        if self.visualization == "lnsXY":
            layer: dict[str, Any] = {**base, "seriesType": self.series, "accessors": metrics}
            layer["xAccessor"] = buckets[0]
            if len(buckets) > 1:
                layer["splitAccessor"] = buckets[1]
            return {
                "legend": {"isVisible": True, "position": "right", "legendSize": "auto"},
                "valueLabels": "hide",
                "fittingFunction": "None",
                "preferredSeriesType": self.series,
                "axisTitlesVisibilitySettings": {"x": False, "yLeft": True, "yRight": True},
                "tickLabelsVisibilitySettings": {"x": True, "yLeft": True, "yRight": True},
                "gridlinesVisibilitySettings": {"x": True, "yLeft": True, "yRight": True},
                "yLeftExtent": {"mode": "full"},
                "yRightExtent": {"mode": "full"},
                "layers": [layer],
            }
        if self.visualization == "lnsHeatmap":
            return {
                "shape": "heatmap",
                **base,
                "xAccessor": buckets[0],
                "yAccessor": buckets[1],
                "valueAccessor": metrics[0],
                "legend": {"isVisible": True, "position": "right", "type": "heatmap_legend"},
                "gridConfig": {
                    "type": "heatmap_grid",
                    "isCellLabelVisible": True,
                    "isYAxisLabelVisible": True,
                    "isXAxisLabelVisible": True,
                    "isYAxisTitleVisible": False,
                    "isXAxisTitleVisible": False,
                },
            }
        if self.visualization == "lnsPie":
            return {
                "shape": "donut",
                "layers": [
                    {
                        **base,
                        "primaryGroups": buckets,
                        "metrics": metrics,
                        "numberDisplay": "percent",
                        "categoryDisplay": "default",
                        "legendDisplay": "default",
                        "nestedLegend": False,
                    }
                ],
            }
        return {
            **base,
            "columns": [{"columnId": self.column_id(c.name)} for c in self.columns],
            "rowHeight": "auto",
            "rowHeightLines": 3,
        }

    def references(self) -> list[dict[str, str]]:
        return [
            {
                "type": "index-pattern",
                "id": self.data_view,
                "name": f"indexpattern-datasource-layer-{self.layer_id}",
            }
        ]

    def panel(self) -> dict[str, Any]:
        """The entry of ``panelsJSON``."""
        x, y, w, h = self.grid
        description = self.question + (
            f" (Menunggu indeks {self.waits_for}: kosong sampai indeks itu ada.)" if self.waits_for else ""
        )
        return {
            "version": PANEL_VERSION,
            "type": "lens",
            "gridData": {"x": x, "y": y, "w": w, "h": h, "i": self.key},
            "panelIndex": self.key,
            "embeddableConfig": {
                "attributes": {
                    "title": self.title,
                    "description": description,
                    "visualizationType": self.visualization,
                    "type": "lens",
                    "references": self.references(),
                    "state": {
                        "visualization": self.visualization_state(),
                        "query": {"query": self.kql, "language": "kuery"},
                        "filters": [],
                        "datasourceStates": {
                            "formBased": {"layers": {self.layer_id: self.layer()}},
                            "textBased": {"layers": {}},
                        },
                        "internalReferences": [],
                        "adHocDataViews": {},
                    },
                },
                "enhancements": {},
            },
            "title": self.title,
        }
