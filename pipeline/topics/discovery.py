"""Emerging-topic discovery over a sliding window of posts: cluster, label, keep ids stable.

Pure Python/numpy: the integrator feeds posts and their embeddings in (``add``), calls ``update`` on a
timer and writes ``Topic.public_view()`` documents; ``state()`` goes to a changelogged table so a
restarted worker resumes with the same ids (``from_state`` plus a replay of the window's posts).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

import numpy as np

from pipeline.topics.cluster import Features, best_centroid, centre, centre_registers, refine, seed_labels
from pipeline.topics.terms import (
    INDONESIAN,
    LABEL_SEPARATOR,
    analyse,
    ctfidf_terms,
    label_from_terms,
    lexical_matrix,
    lexical_terms,
)
from schemas.posts import TopicRef
from schemas.topics import (
    AgencyCount,
    RegionCount,
    RepresentativePost,
    SentimentMix,
    Topic,
    TopicPost,
    TopicState,
)
from schemas.vocab import Category

T = TypeVar("T")
HOUR = timedelta(hours=1)
BACKGROUND_SAMPLE = 5_000
"""Unclustered posts used as c-TF-IDF's background class; counting all 100k would dominate an update."""
REGION_TERM = "__region"
"""Prefix of the pseudo-term for a post's kab/kota in the lexical similarity (never in a label)."""
_CENTROID_DECIMALS = 5  # keeps the changelog entry small; far below any threshold's resolution


@dataclass(frozen=True)
class Thresholds:
    """Similarity cut-offs, calibrated on mE5-small + TF-IDF over :mod:`pipeline.bench.synthetic`; they
    still hold for the fine-tuned encoder's ``TOPIC_LAYER`` embeddings (checked by the topic tests).

    All but ``match`` are on the hybrid similarity (see :mod:`pipeline.topics.cluster`); ``match`` is the
    plain cosine of raw mE5 centroids, which is what a stored topic keeps.
    """

    alpha: float = 0.4
    link: float = 0.25
    assign: float = 0.35
    merge: float = 0.35
    cohesion: float = 0.4
    match: float = 0.975
    term_overlap: float = 0.3
    register_shrink: float = 20.0
    centre_shrink: float = 30.0


@dataclass
class Changes:
    """What the last ``update`` did besides refreshing topics: for the integrator to mirror in the index."""

    new: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    merged: dict[str, str] = field(default_factory=dict)  # old id → id it was folded into


class TopicDiscovery:
    """Sliding-window clustering of post embeddings into labelled topics with stable ids."""

    def __init__(
        self,
        *,
        window: timedelta = timedelta(hours=24),
        min_size: int = 5,
        retire_after: int = 3,
        thresholds: Thresholds | None = None,
        non_service_weight: float = 0.25,
        chunk_size: int = 2048,
        refine_iterations: int = 3,
        label_terms: int = 3,
    ) -> None:
        self.window = window
        self.min_size = min_size
        self.retire_after = retire_after
        self.th = thresholds or Thresholds()
        self.non_service_weight = non_service_weight
        self.chunk_size = chunk_size
        self.refine_iterations = refine_iterations
        self.label_terms = label_terms
        self._posts: list[TopicPost] = []
        self._tokens: list[list[str]] = []  # for labels
        self._terms: list[list[str]] = []  # for the lexical similarity
        self._registers: list[str] = []  # Indonesian or a dialect, to centre each on its own
        self._emb = np.zeros((0, 0), dtype=np.float32)
        self._index: dict[str, int] = {}
        self._topics: dict[str, Topic] = {}
        self._assignment: dict[str, str] = {}
        self._seq = 0
        self.last_changes = Changes()

    # -- window -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._posts)

    def add(self, posts: Sequence[TopicPost], embeddings: np.ndarray) -> None:
        """Add posts with their (L2-normalised) embeddings; a key already in the window is replaced."""
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or len(emb) != len(posts):
            raise ValueError(f"{len(posts)} posts but embeddings of shape {emb.shape}")
        if not len(posts):
            return
        if emb.shape[1] == 0 or not np.isfinite(emb).all():  # one would break every later update
            raise ValueError(f"embeddings of shape {emb.shape} with non-finite or no values")
        if self._emb.shape[1] == 0:
            self._emb = np.zeros((max(1024, len(posts)), emb.shape[1]), dtype=np.float32)
        elif emb.shape[1] != self._emb.shape[1]:
            raise ValueError(f"embedding width {emb.shape[1]}, window holds {self._emb.shape[1]}")
        for post, vec in zip(posts, emb, strict=True):
            i = self._index.get(post.key)
            if i is None:
                i = len(self._posts)
                if i == len(self._emb):  # amortised growth: one copy per doubling
                    self._emb = np.concatenate([self._emb, np.zeros_like(self._emb)])
                self._index[post.key] = i
                self._posts.append(post)
                self._tokens.append([])
                self._terms.append([])
                self._registers.append(INDONESIAN)
            else:
                self._posts[i] = post
            self._tokens[i], self._registers[i] = analyse(post.text)
            self._terms[i] = lexical_terms(self._tokens[i])
            if post.region is not None:  # a story is usually one place: the kab/kota counts as a shared term
                self._terms[i].append(f"{REGION_TERM}{post.region.value}")
            self._emb[i] = vec

    def _expire(self, now: datetime) -> None:
        cutoff = now - self.window
        keep = [i for i, p in enumerate(self._posts) if p.created_at >= cutoff]
        if len(keep) == len(self._posts):
            return
        n = len(keep)
        self._emb[:n] = self._emb[keep]
        self._posts = [self._posts[i] for i in keep]
        self._tokens = [self._tokens[i] for i in keep]
        self._terms = [self._terms[i] for i in keep]
        self._registers = [self._registers[i] for i in keep]
        self._index = {p.key: i for i, p in enumerate(self._posts)}

    # -- update -------------------------------------------------------------------------------------

    def update(self, now: datetime) -> list[Topic]:
        """Re-cluster the window as of ``now``; return the active topics, largest first.

        Posts newer than ``now`` are left out (and kept), so replaying with the same ``now`` gives the
        same answer whatever arrived since.
        """
        self._seq += 1
        self._expire(now)
        labels, sims = self._cluster(now)
        clusters = self._clusters(labels, sims)
        rest = np.flatnonzero(labels < 0)
        rest = rest[:: max(1, len(rest) // BACKGROUND_SAMPLE)]  # an even sample is enough for idf
        terms = ctfidf_terms(
            [[self._tokens[i] for i in rows] for rows in clusters], [self._tokens[i] for i in rest]
        )
        raw = [self._raw_centroid(rows) for rows in clusters]
        ids, changes = self._match(clusters, raw, terms)
        new_topics: dict[str, Topic] = {}
        self._assignment = {}
        for tid, rows, cterms, cent in zip(ids, clusters, terms, raw, strict=True):
            prev = self._topics.get(tid)
            merged = sorted(
                {*(prev.merged_ids if prev else []), *(k for k, v in changes.merged.items() if v == tid)}
            )
            topic = self._describe(tid, rows, sims, cterms, cent, now, prev, merged)
            new_topics[tid] = topic
            keys = [self._posts[i].key for i in rows]
            self._assignment.update(dict.fromkeys(keys, tid))
        active = sorted(new_topics.values(), key=lambda t: (-t.size, t.id))
        cutoff = now - self.window
        for tid, old in self._topics.items():
            if tid in new_topics or tid in changes.merged:
                continue
            misses = old.misses + 1
            if misses >= self.retire_after or old.last_seen < cutoff:
                changes.retired.append(tid)
            else:
                new_topics[tid] = old.model_copy(update={"misses": misses})
        self._topics = new_topics
        self.last_changes = changes
        return active

    def _cluster(self, now: datetime) -> tuple[np.ndarray, np.ndarray]:
        """Cluster label (``-1`` for none) and similarity to the own centroid of every window row."""
        n = len(self._posts)
        labels = np.full(n, -1, dtype=np.int64)
        sims = np.zeros(n, dtype=np.float32)
        # canonical order, whatever the arrival order: two workers with one window agree
        rows = np.array(
            sorted(
                (i for i in range(n) if self._posts[i].created_at <= now),
                key=lambda i: (self._posts[i].created_at, self._posts[i].key),
            ),
            dtype=np.int64,
        )
        if len(rows) == 0:
            return labels, sims
        weight = np.array(
            [
                self.non_service_weight if self._posts[i].category == Category.BUKAN_LAYANAN else 1.0
                for i in rows
            ],
            dtype=np.float32,
        )
        emb = centre_registers(
            centre(self._emb[rows], self.th.centre_shrink),
            [self._registers[i] for i in rows],
            INDONESIAN,
            self.th.register_shrink,
        )
        feats = Features(emb, lexical_matrix([self._terms[i] for i in rows]), weight, self.th.alpha)
        # Every update clusters the window afresh: seeding with the previous members let early, partial
        # clusters snowball on a live stream (measured: largest chatter group 22-27 posts instead of
        # 9-11 on the synthetic days); ids stay stable through centroid matching instead.
        seeds = seed_labels(
            feats,
            np.arange(len(rows)),
            link_threshold=self.th.link,
            assign_threshold=self.th.assign,
            min_seed=3,
            chunk_size=self.chunk_size,
        )
        sub, sub_sims = refine(
            feats,
            seeds,
            assign_threshold=self.th.assign,
            merge_threshold=self.th.merge,
            iterations=self.refine_iterations,
        )
        # keep big, tight groups; weighted size, so off-topic posts cannot carry a topic
        inside = sub >= 0
        k = int(sub.max()) + 1 if inside.any() else 0
        mass = np.bincount(sub[inside], weights=weight[inside], minlength=k)
        count = np.bincount(sub[inside], minlength=k)
        cohesion = np.bincount(sub[inside], weights=sub_sims[inside], minlength=k) / np.maximum(count, 1)
        kept = np.flatnonzero((mass >= self.min_size) & (cohesion >= self.th.cohesion))
        if len(kept) < k:  # re-assign against the kept centroids: a dropped group's post may fit one
            remap = np.full(k, -1)
            remap[kept] = np.arange(len(kept))
            sub = np.where(inside, remap[np.maximum(sub, 0)], -1)
            sub, sub_sims = best_centroid(feats, feats.centroids(sub, len(kept)), self.th.assign)
        labels[rows] = sub
        sims[rows] = np.where(sub >= 0, sub_sims, 0.0)
        return labels, sims

    def _clusters(self, labels: np.ndarray, sims: np.ndarray) -> list[np.ndarray]:
        """Member rows of each cluster, each sorted by (created_at, key); clusters by earliest post."""
        out: list[np.ndarray] = []
        for k in np.unique(labels[labels >= 0]):
            rows = np.flatnonzero(labels == k)
            rows = np.array(
                sorted(rows.tolist(), key=lambda i: (self._posts[i].created_at, self._posts[i].key))
            )
            out.append(rows)
        out.sort(key=lambda r: (self._posts[r[0]].created_at, self._posts[r[0]].key))
        return out

    def _raw_centroid(self, rows: np.ndarray) -> np.ndarray:
        c = self._emb[rows].mean(axis=0)
        return np.asarray(c / max(float(np.linalg.norm(c)), 1e-12), dtype=np.float32)

    # -- identity -----------------------------------------------------------------------------------

    def _mint(self, rows: np.ndarray) -> str:
        keys = sorted(self._posts[i].key for i in rows[:3])
        return "t-" + hashlib.sha1("\n".join(keys).encode()).hexdigest()[:10]

    def _match(
        self, clusters: list[np.ndarray], raw: list[np.ndarray], terms: list[list[str]]
    ) -> tuple[list[str], Changes]:
        """Give each cluster an id: an old topic's if their centroids agree and they share terms, else a
        fresh one.

        Each old topic goes to its most similar cluster among those sharing at least ``term_overlap`` of
        its terms (if the centroids are ≥ ``match``): raw mE5 centroids of unrelated clusters can be that
        close, and a catch-all once took over the id of a flood topic that way. A cluster claimed by several
        old topics keeps the oldest id and records the others as merged into it; a cluster claimed by none
        gets a new id from its three earliest posts. A split keeps the old id on the closer half.
        """
        changes = Changes()
        old = sorted(self._topics.values(), key=lambda t: (t.first_seen, t.id))
        claims: dict[int, list[Topic]] = {}
        if old and clusters:
            old_c = np.array([t.centroid for t in old], dtype=np.float32)
            sim = old_c @ np.stack(raw).T  # (old, new)
            for i, topic in enumerate(old):
                shared = np.array([_overlap(topic.terms, t) >= self.th.term_overlap for t in terms])
                score = np.where(shared, sim[i], -np.inf)
                j = int(score.argmax())
                if score[j] >= self.th.match:
                    claims.setdefault(j, []).append(topic)
        ids: list[str] = []
        taken: set[str] = set()
        for j, rows in enumerate(clusters):
            claimants = claims.get(j, [])
            if claimants:
                tid = claimants[0].id  # oldest first_seen
                for other in claimants[1:]:
                    changes.merged[other.id] = tid
            else:
                tid = self._mint(rows)
                while tid in taken or tid in self._topics:  # vanishingly rare; stays deterministic
                    tid = "t-" + hashlib.sha1(tid.encode()).hexdigest()[:10]
                changes.new.append(tid)
            taken.add(tid)
            ids.append(tid)
        return ids, changes

    # -- description --------------------------------------------------------------------------------

    def _describe(
        self,
        tid: str,
        rows: np.ndarray,
        sims: np.ndarray,
        terms: list[str],
        centroid: np.ndarray,
        now: datetime,
        prev: Topic | None,
        merged: list[str],
    ) -> Topic:
        posts = [self._posts[i] for i in rows]
        times = [p.created_at for p in posts]
        last_hour = sum(1 for t in times if now - HOUR < t <= now)
        prev_hour = sum(1 for t in times if now - 2 * HOUR < t <= now - HOUR)
        agencies = Counter(a for p in posts for a in p.agencies)
        regions = Counter(p.region for p in posts if p.region is not None)
        mix = Counter(p.sentiment.value for p in posts)
        reps: list[RepresentativePost] = []
        seen: set[str] = set()
        for i in sorted(rows.tolist(), key=lambda i: (-float(sims[i]), self._posts[i].key)):
            text = self._posts[i].text
            if text not in seen:
                seen.add(text)
                reps.append(RepresentativePost(key=self._posts[i].key, text=text))
            if len(reps) == 3:
                break
        first = min(times)
        label = label_from_terms(terms, self.label_terms) or tid
        if prev is not None and set(prev.label.split(LABEL_SEPARATOR)) == set(label.split(LABEL_SEPARATOR)):
            label = prev.label  # the same terms reordered: no relabelling of every post for a new order
        return Topic(
            id=tid,
            label=label,
            terms=terms,
            size=len(posts),
            posts_last_hour=last_hour,
            posts_prev_hour=prev_hour,
            growth=last_hour / (prev_hour + 1),
            first_seen=min(first, prev.first_seen) if prev else first,
            last_seen=max(times),
            updated_at=now,
            top_agencies=[AgencyCount(agency=a, count=c) for a, c in _top(agencies)],
            top_regions=[RegionCount(region=r, count=c) for r, c in _top(regions)],
            sentiment=SentimentMix(**mix),
            representative_posts=reps,
            merged_ids=merged,
            centroid=[round(float(x), _CENTROID_DECIMALS) for x in centroid],
        )

    # -- queries and persistence --------------------------------------------------------------------

    @property
    def topics(self) -> dict[str, Topic]:
        """Every topic held, including those missing from the last update but not yet retired."""
        return dict(self._topics)

    def topic_of(self, key: str) -> TopicRef | None:
        """The topic a window post belonged to at the last update (for ``EnrichedPost.topic``)."""
        tid = self._assignment.get(key)
        return self._topics[tid].ref() if tid is not None else None

    def assignments(self) -> dict[str, str]:
        """Post key → topic id, as of the last update."""
        return dict(self._assignment)

    def state(self) -> TopicState:
        return TopicState(seq=self._seq, topics=dict(self._topics))

    @classmethod
    def from_state(
        cls,
        state: TopicState,
        posts: Sequence[TopicPost] = (),
        embeddings: np.ndarray | None = None,
        **params: object,
    ) -> TopicDiscovery:
        """Resume from a saved state and the window's posts (replayed with their embeddings)."""
        disc = cls(**params)  # type: ignore[arg-type]
        disc._topics = dict(state.topics)
        disc._seq = state.seq
        if posts:
            if embeddings is None:
                raise ValueError("posts given without their embeddings")
            disc.add(posts, embeddings)
        return disc


def _overlap(old: Sequence[str], new: Sequence[str]) -> float:
    """Share of the shorter term list the two have in common (1 when the old topic kept no terms)."""
    if not old:
        return 1.0
    if not new:
        return 0.0
    return len(set(old) & set(new)) / min(len(set(old)), len(set(new)))


def _top(counts: Counter[T], n: int = 5) -> list[tuple[T, int]]:
    """Most common first, ties by value so the order is reproducible."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:n]
