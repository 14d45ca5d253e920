"""Disjoint clique embeddings of one size on a solver's graph, found once and cached on disk.

A neuron BQM is dense, so each neuron needs a clique embedding; a layer's neurons share one QPU call when
they sit on *disjoint* cliques. :class:`CliqueCache` finds them greedily (minorminer's
``find_multiple_embeddings`` with busclique's clique embedder: embed, remove the qubits used, embed again) and
keeps them per (solver graph, clique size):

* in memory, and on disk under ``<cache>/dwave-embeddings/<key>/clique-<size>.json`` (``<cache>`` is
  ``$QANNEALQ_CACHE`` or ``~/.cache/qannealq``), where ``<key>`` names the solver's topology and a digest of
  its working graph (qubits and couplers), so a solver with other broken qubits gets its own entry;
* one embedding is searched for when one is asked for (one neuron per call); a request for more searches up to
  :data:`MAX_SET` (64) or all that the graph holds (``exhausted``), whichever is fewer, extending what was
  found before (each busclique search takes ~0.04 s on Pegasus P16, so a set costs a few seconds, once). :meth:`CliqueCache.get` keeps the
  search order, so the first embedding of a size is the same whatever was searched before (one neuron per
  call always uses it); :meth:`CliqueCache.best` orders the whole set best first: most couplers among its
  qubits (an interaction split over more couplers, chains held by more couplers: on the mock's 17-cliques,
  lower energies than the embeddings with fewest couplers), then fewest qubits, leaving out those with longer
  chains than a limit; so a layer of ``n`` neurons uses the best ``n`` embeddings, not the first ``n`` found;
* an entry is checked when read (format, graph, size, every embedding a valid clique minor of the graph, all
  pairwise disjoint): a corrupt or foreign entry is logged and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import networkx as nx
from dwave.embedding import is_valid_embedding

from qannealq.store import atomic_write

__all__ = ["CliqueEmbeddings", "CliqueCache", "graph_key", "check_embeddings", "MAX_SET"]

logger = logging.getLogger(__name__)

FORMAT = 2  # 2: search order kept (1 stored them sorted)
MAX_SET = 64
"""Most embeddings searched per size: a call of 64 neurons already spreads its programming time thin."""


def graph_key(graph: nx.Graph, topology: Mapping) -> str:
    """``<type>-<shape>-<digest>``: the solver's topology and a SHA-256 of its sorted qubits and couplers."""
    digest = hashlib.sha256()
    digest.update(json.dumps(sorted(graph.nodes)).encode())
    digest.update(json.dumps(sorted(sorted(e) for e in graph.edges)).encode())
    shape = "x".join(str(s) for s in topology.get("shape", [])) or "any"
    return f"{topology.get('type', 'graph')}-{shape}-{digest.hexdigest()[:16]}"


@dataclass(frozen=True)
class CliqueEmbeddings:
    """Disjoint embeddings of the clique on variables ``0..size-1``.

    Attributes:
        size: clique size (a BQM with up to ``size`` variables uses the first chains).
        embeddings: ``embeddings[k][v]`` is the chain (qubits) of variable ``v`` in embedding ``k``.
        exhausted: the search found no further disjoint embedding (the graph holds exactly these).
    """

    size: int
    embeddings: tuple[tuple[tuple[int, ...], ...], ...]
    exhausted: bool

    def __len__(self) -> int:
        return len(self.embeddings)

    def chains(self, k: int, variables: list) -> dict:
        """Embedding ``k`` for ``variables`` (mapped in order onto the clique's first chains)."""
        return {v: self.embeddings[k][j] for j, v in enumerate(variables)}

    def qubits(self, k: int, num_variables: int) -> int:
        """Qubits used by a BQM of ``num_variables`` variables on embedding ``k``."""
        return sum(len(chain) for chain in self.embeddings[k][:num_variables])


def check_embeddings(embeddings, size: int, graph: nx.Graph) -> str | None:
    """What is wrong with ``embeddings`` as disjoint ``size``-clique embeddings in ``graph`` (None: nothing)."""
    clique = nx.complete_graph(size)
    used: set = set()
    for k, emb in enumerate(embeddings):
        if len(emb) != size:
            return f"embedding {k} has {len(emb)} chains, not {size}"
        chains = {v: list(chain) for v, chain in enumerate(emb)}
        if not is_valid_embedding(chains, clique, graph):
            return f"embedding {k} is not a clique embedding in this graph"
        qubits = {q for chain in emb for q in chain}
        if used & qubits:
            return f"embedding {k} shares qubits with an earlier one"
        used |= qubits
    return None


class CliqueCache:
    """Disjoint clique embeddings on one solver graph, per size (see the module docstring).

    Args:
        graph: the solver's working graph (``to_networkx_graph()``, with its topology attributes).
        topology: the solver's ``properties["topology"]`` (type and shape), part of the cache key.
        root: the cache folder (default ``<qannealq cache>/dwave-embeddings``).
    """

    def __init__(self, graph: nx.Graph, topology: Mapping, root: Path | None = None) -> None:
        from qannealq.data import cache_dir

        self.graph = graph
        self.key = graph_key(graph, topology)
        self.root = (Path(root) if root is not None else cache_dir() / "dwave-embeddings") / self.key
        self._sets: dict[int, CliqueEmbeddings] = {}

    def path(self, size: int) -> Path:
        """The cache file of ``size``-clique embeddings."""
        return self.root / f"clique-{size}.json"

    def get(self, size: int, count: int) -> CliqueEmbeddings:
        """Disjoint ``size``-clique embeddings in search order: one (``count <= 1``), or :data:`MAX_SET` (all the
        graph holds when fewer fit).

        Read from memory or disk, and searched (then written) only where more are needed.
        """
        target = 1 if count <= 1 else MAX_SET
        found = self._sets.get(size) or self._load(size)
        if found is None or (len(found) < target and not found.exhausted):
            found = self._extend(size, target, found)
            self._save(found)
        self._sets[size] = found
        return found

    def best(self, size: int, max_chain: int | None = None) -> CliqueEmbeddings:
        """The set of :meth:`get` for many neurons, best first: most couplers among an embedding's qubits, then
        fewest qubits (search order otherwise).

        ``max_chain`` leaves out the embeddings with a longer chain: the greedy search on the qubits left free
        finds some with much longer chains than the first (on Pegasus P16, 21-cliques with chains of up to 10
        qubits beside the first's 4), and those have the most couplers, so they would come first."""
        def key(emb):
            qubits = [q for chain in emb for q in chain]
            return -self.graph.subgraph(qubits).number_of_edges(), len(qubits)

        found = self.get(size, 2)
        kept = [emb for emb in found.embeddings if max_chain is None or max(map(len, emb)) <= max_chain]
        return CliqueEmbeddings(size, tuple(sorted(kept, key=key)), found.exhausted)

    def _load(self, size: int) -> CliqueEmbeddings | None:
        path = self.path(size)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            if data.get("format") != FORMAT or data.get("graph") != self.key or data.get("size") != size:
                raise ValueError("written for another graph, size or format")
            embeddings = tuple(tuple(tuple(int(q) for q in chain) for chain in emb) for emb in data["embeddings"])
            problem = check_embeddings(embeddings, size, self.graph)
            if problem:
                raise ValueError(problem)
            return CliqueEmbeddings(size, embeddings, bool(data["exhausted"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("clique embedding cache %s is unusable (%s): searching again", path, exc)
            return None

    def _save(self, found: CliqueEmbeddings) -> None:
        payload = {"format": FORMAT, "graph": self.key, "size": found.size, "exhausted": found.exhausted,
                   "embeddings": [[list(chain) for chain in emb] for emb in found.embeddings]}
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path(found.size), json.dumps(payload))
        except (OSError, ValueError) as exc:  # StoreError is an OSError: an unwritable cache costs a search
            logger.warning("could not cache clique embeddings in %s: %s", self.root, exc)

    def _extend(self, size: int, count: int, found: CliqueEmbeddings | None) -> CliqueEmbeddings:
        """Greedy search for up to ``count`` disjoint cliques in all, on the qubits the set so far leaves free."""
        from minorminer import busclique
        from minorminer.utils.parallel_embeddings import find_multiple_embeddings

        have = list(found.embeddings) if found else []
        free = self.graph
        if have:  # the search itself copies the graph before removing what it uses
            free = self.graph.copy()
            free.remove_nodes_from(q for emb in have for chain in emb for q in chain)
        want = max(count - len(have), 1)
        start = time.perf_counter()
        new = find_multiple_embeddings(
            nx.complete_graph(size), free, max_num_emb=want, use_filter=False, one_to_iterable=True,
            embedder=lambda source, target: busclique.find_clique_embedding(size, target, use_cache=False))
        have += [tuple(tuple(int(q) for q in emb[v]) for v in range(size)) for emb in new]
        logger.info("found %d disjoint %d-clique embeddings (%d new) in %.1f s on %s", len(have), size, len(new),
                    time.perf_counter() - start, self.key)
        return CliqueEmbeddings(size, tuple(have), len(new) < want)
