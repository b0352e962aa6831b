"""The shipped attribution head on the kinds of post it exists for: an agent's ad names an agency without
being about it (kept in ``mentions``, left out of ``agencies``), a citizen's post about the service counts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.enrich.enricher import Enricher
from pipeline.model.data import DEFAULT_MODEL_DIR
from pipeline.validation import validate_raw_post
from schemas.vocab import Agency


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    return Enricher.load(DEFAULT_MODEL_DIR)


@pytest.mark.parametrize(
    ("text", "named", "about"),
    [
        ("jasa urus STNK mati 5 tahun, proses cepat, wa 0812xxxx", Agency.SAMSAT, False),
        ("jasa bikin KTP kilat tanpa antri dukcapil tangerang", Agency.DUKCAPIL, False),
        ("perpanjang stnk 5 tahunan di samsat cikokol harus bawa bpkb asli gak min?", Agency.SAMSAT, True),
        ("bikin KTP di dukcapil kota tangerang antrenya 3 jam, blangkonya habis lagi", Agency.DUKCAPIL, True),
    ],
)
def test_an_agents_ad_names_the_agency_and_a_citizens_post_is_about_it(
    enricher: Enricher, text: str, named: Agency, about: bool
) -> None:
    post = validate_raw_post({"id": "a1", "platform": "x", "text": text, "created_at": datetime.now(UTC)})
    (result,) = enricher.enrich([post])
    assert not isinstance(result, Exception)
    assert named in result.mentions
    assert (named in result.agencies) is about, result.agencies
