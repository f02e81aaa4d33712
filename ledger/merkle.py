"""The transaction log's Merkle tree, exactly as RFC 9162 (Certificate Transparency v2) defines it.

Section references are to RFC 9162:

* 2.1.1   Merkle Tree Hash: ``MTH({}) = HASH()``, ``MTH({d0}) = HASH(0x00 || d0)`` and, for
  ``n > 1`` with ``k`` the largest power of two smaller than ``n``,
  ``MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n]))``. HASH is SHA-256.
* 2.1.3.1 inclusion proof ``PATH(m, D[n])``; 2.1.3.2 verifying an inclusion proof.
* 2.1.4.1 consistency proof ``PROOF(m, D[n])`` / ``SUBPROOF``; 2.1.4.2 verifying it.

The module has three parts:

1. Reference functions over a full list of leaf data (:func:`root`, :func:`inclusion_proof`,
   :func:`consistency_proof`). They transcribe the recursive definitions and cost O(n); they are
   the specification the rest is tested against.
2. Verifiers (:func:`root_from_inclusion_proof`, :func:`verify_inclusion`,
   :func:`verify_consistency`) that follow the iterative algorithms of 2.1.3.2 and 2.1.4.2
   step by step. They return nothing and raise :class:`ProofError` (or its subclass
   :class:`RootMismatchError`) on any failure.
3. :class:`MerkleTree`, an incremental tree over a :class:`NodeStore` of complete, aligned
   subtree hashes, so appending and proving cost O(log n) store reads.

What a proof does *not* authenticate: the tree size. A proof is checked against a (size, root)
pair the verifier already trusts, e.g. from a signed tree head. The same proof hashes can check
for a different size when the tree shapes coincide (the inclusion proof for leaf 0 of a 4-leaf
tree also "checks" for leaf 0 of a 3-leaf tree whose third leaf hash equals the right subtree
hash), so callers must take ``size`` from the signed head, never from the proof's sender.

Nothing here does I/O; the only dependency is :mod:`hashlib`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from ledger.errors import VerificationError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MemoryNodeStore",
    "MerkleTree",
    "Node",
    "NodeStore",
    "ProofError",
    "RootMismatchError",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "nodes_for_append",
    "root",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Size in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""``MTH({}) = HASH()``, the root of the empty tree (RFC 9162 2.1.1)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

Node = tuple[int, int, bytes]
"""A stored node ``(level, index, hash)``: the hash of the complete subtree over leaves
``[index * 2**level, (index + 1) * 2**level)``. Level 0 holds the leaf hashes."""


# -- errors -------------------------------------------------------------------


class ProofError(VerificationError):
    """A Merkle inclusion or consistency proof is malformed or does not verify."""

    default_code = "bad_proof"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="bad_proof")


class RootMismatchError(ProofError):
    """A well-formed proof leads to a root other than the expected one.

    ``expected`` is the root the caller trusts, ``calculated`` the one the proof produced.
    """

    def __init__(self, expected: bytes, calculated: bytes, *, what: str = "root") -> None:
        super().__init__(
            f"{what} mismatch: expected {expected.hex()}, calculated {calculated.hex()}"
        )
        self.expected = expected
        self.calculated = calculated

    def to_problem(self) -> dict[str, object]:
        return {
            **super().to_problem(),
            "expected": self.expected.hex(),
            "calculated": self.calculated.hex(),
        }


# -- hashing (RFC 9162 2.1.1) -------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """``HASH(0x00 || data)``: the hash of one leaf (RFC 9162 2.1.1)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``HASH(0x01 || left || right)``: the hash of an interior node (RFC 9162 2.1.1)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n > 1``): the ``k`` of RFC 9162 2.1.1."""
    return 1 << ((n - 1).bit_length() - 1)


# -- reference functions over the full leaf list (RFC 9162 2.1.1, 2.1.3.1, 2.1.4.1) ----------


def root(leaves: Sequence[bytes]) -> bytes:
    """``MTH(D[n])`` of the leaf data ``leaves`` (RFC 9162 2.1.1); ``EMPTY_ROOT`` if empty.

    Costs O(n) hashes: this is the specification, not the fast path (see :class:`MerkleTree`).
    """
    return _mth([leaf_hash(d) for d in leaves], 0, len(leaves))


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """``PATH(index, D[n])`` for the leaf data ``leaves`` (RFC 9162 2.1.3.1).

    Raises ``ValueError`` unless ``0 <= index < len(leaves)``.
    """
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf index {index} is out of range for tree size {len(leaves)}")
    return _path(index, [leaf_hash(d) for d in leaves], 0, len(leaves))


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """``PROOF(old_size, D[n])`` for the leaf data ``leaves`` (RFC 9162 2.1.4.1).

    The proof for ``old_size == len(leaves)`` is empty. Raises ``ValueError`` unless
    ``0 < old_size <= len(leaves)``: there is no proof from the empty tree.
    """
    if not 0 < old_size <= len(leaves):
        raise ValueError(
            f"old size {old_size} is not in 1..{len(leaves)}: no consistency proof exists"
        )
    return _subproof(old_size, [leaf_hash(d) for d in leaves], 0, len(leaves), True)


def _mth(hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    """``MTH(D[lo:hi])`` given the leaf hashes (RFC 9162 2.1.1)."""
    n = hi - lo
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return hashes[lo]
    k = _split(n)
    return node_hash(_mth(hashes, lo, lo + k), _mth(hashes, lo + k, hi))


def _path(m: int, hashes: Sequence[bytes], lo: int, hi: int) -> list[bytes]:
    """``PATH(m, D[lo:hi])`` with ``m`` relative to ``lo`` (RFC 9162 2.1.3.1)."""
    n = hi - lo
    if n == 1:
        return []  # PATH(0, {d(0)}) = {}
    k = _split(n)
    if m < k:  # PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])
        return [*_path(m, hashes, lo, lo + k), _mth(hashes, lo + k, hi)]
    # PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k])
    return [*_path(m - k, hashes, lo + k, hi), _mth(hashes, lo, lo + k)]


def _subproof(m: int, hashes: Sequence[bytes], lo: int, hi: int, b: bool) -> list[bytes]:
    """``SUBPROOF(m, D[lo:hi], b)`` (RFC 9162 2.1.4.1)."""
    n = hi - lo
    if m == n:  # SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])}
        return [] if b else [_mth(hashes, lo, hi)]
    k = _split(n)
    if m <= k:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
        return [*_subproof(m, hashes, lo, lo + k, b), _mth(hashes, lo + k, hi)]
    # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
    return [*_subproof(m - k, hashes, lo + k, hi, False), _mth(hashes, lo, lo + k)]


# -- verifiers (RFC 9162 2.1.3.2, 2.1.4.2) --------------------------------------------------


def _require_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, want {HASH_SIZE}")


def _require_proof_hashes(proof: Sequence[bytes], want: int) -> None:
    if len(proof) != want:
        raise ProofError(f"wrong proof size {len(proof)}, want {want}")
    for i, p in enumerate(proof):
        _require_hash(p, f"proof[{i}]")


def _inclusion_proof_size(index: int, size: int) -> int:
    """How many hashes ``PATH(index, D[size])`` has, for ``0 <= index < size``.

    The path has one hash per level below the point where the paths to ``index`` and to the
    last leaf ``size - 1`` part (``inner``), plus one per perfect left subtree above it that
    the right edge of the tree skips (``border``).
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner + border


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` gives for leaf hash ``leaf_hash`` at ``index`` in a tree of
    ``size`` leaves, by the algorithm of RFC 9162 2.1.3.2 (steps 1 to 4, and the ``sn == 0``
    half of step 5). Comparing the result with a trusted root is the caller's job, or use
    :func:`verify_inclusion`.

    Raises :class:`ProofError` if ``index >= size`` (or either is negative), if ``leaf_hash``
    or any proof hash is not 32 bytes, or if ``proof`` has the wrong number of hashes.
    """
    if index < 0 or size < 0:
        raise ProofError(f"negative leaf index {index} or tree size {size}")
    # Step 1: leaf_index must be smaller than tree_size.
    if index >= size:
        raise ProofError(f"leaf index {index} is out of range for tree size {size}")
    _require_hash(leaf_hash, "leaf hash")
    # The iteration below rejects a proof of the wrong length on its own (steps 4a and 5);
    # checking the length first only gives a clearer message.
    _require_proof_hashes(proof, _inclusion_proof_size(index, size))

    # Step 2: set fn to leaf_index and sn to tree_size - 1.
    fn, sn = index, size - 1
    # Step 3: set r to hash.
    r = leaf_hash
    # Step 4: for each value p in the inclusion_path array:
    for p in proof:
        # 4a. If sn is 0, stop the iteration and fail the proof verification.
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        # 4b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn & 1 or fn == sn:
            # 4b.i. Set r to HASH(0x01 || p || r).
            r = node_hash(p, r)
            # 4b.ii. If LSB(fn) is not set, right-shift both fn and sn equally until either
            # LSB(fn) is set or fn is 0.
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            # 4b. Otherwise, set r to HASH(0x01 || r || p).
            r = node_hash(r, p)
        # 4c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # Step 5 (first half): sn must be 0.
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` proves leaf hash ``leaf_hash`` at ``index`` in the tree of ``size``
    leaves whose root is ``root`` (RFC 9162 2.1.3.2).

    Returns nothing on success. Raises :class:`RootMismatchError` if the proof leads to
    another root and :class:`ProofError` for any other failure (including ``size == 0``,
    which contains no leaf). ``size`` and ``root`` must come from a trusted tree head.
    """
    _require_hash(root, "root")
    calculated = root_from_inclusion_proof(leaf_hash, index, size, proof)
    # Step 5 (second half): compare r against the root_hash.
    if calculated != root:
        raise RootMismatchError(root, calculated)


def _consistency_proof_size(old_size: int, new_size: int) -> int:
    """How many hashes ``PROOF(old_size, D[new_size])`` has, for ``0 < old_size < new_size``.

    It is the inclusion path of the old tree's last leaf in the new tree, minus the levels
    inside the largest perfect subtree that ends the old tree (its root stands in for them),
    plus that subtree's root unless it is the whole old tree (RFC 9162 2.1.4.2 step 2).
    """
    shift = (old_size & -old_size).bit_length() - 1  # trailing zero bits of old_size
    seed = 0 if old_size == 1 << shift else 1
    return seed + _inclusion_proof_size(old_size - 1, new_size) - shift


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that ``proof`` proves the tree of ``new_size`` leaves with root ``new_root``
    extends the tree of ``old_size`` leaves with root ``old_root`` (RFC 9162 2.1.4.2).

    Returns nothing on success and raises :class:`ProofError` (:class:`RootMismatchError`
    when a computed root differs) otherwise. ``old_size`` must be at least 1: a proof from
    the empty tree is not a valid request. ``old_size == new_size`` needs an empty proof
    (``PROOF(m, D[m])`` is empty, 2.1.4.1) and equal roots; the 2.1.4.2 algorithm, whose step 1
    fails an empty proof, applies to ``old_size < new_size``.
    """
    if old_size < 0 or new_size < 0:
        raise ProofError(f"negative tree size: old {old_size}, new {new_size}")
    if old_size == 0:
        raise ProofError("old size 0: there is no consistency proof from the empty tree")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    _require_hash(old_root, "old root")
    _require_hash(new_root, "new root")
    if old_size == new_size:
        _require_proof_hashes(proof, 0)
        if old_root != new_root:
            raise RootMismatchError(old_root, new_root, what="root of the same size")
        return
    # As for inclusion, the steps below reject a proof of the wrong length on their own
    # (steps 1, 6a and 7); checking the length first only gives a clearer message.
    _require_proof_hashes(proof, _consistency_proof_size(old_size, new_size))
    first, second = old_size, new_size
    path = list(proof)
    # Step 1: if consistency_path is an empty array, stop and fail the proof verification.
    if not path:
        raise ProofError("empty consistency proof")
    # Step 2: if first is an exact power of 2, prepend first_hash to the consistency_path.
    if first & (first - 1) == 0:
        path.insert(0, old_root)
    # Step 3: set fn to first - 1 and sn to second - 1.
    fn, sn = first - 1, second - 1
    # Step 4: if LSB(fn) is set, right-shift both fn and sn equally until LSB(fn) is not set.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5: set both fr and sr to the first value in the consistency_path array.
    fr = sr = path[0]
    # Step 6: for each subsequent value c in the consistency_path array:
    for c in path[1:]:
        # 6a. If sn is 0, stop the iteration and fail the proof verification.
        if sn == 0:
            raise ProofError("consistency proof is too long")
        # 6b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn & 1 or fn == sn:
            # 6b.i. Set fr to HASH(0x01 || c || fr).  6b.ii. Set sr to HASH(0x01 || c || sr).
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            # 6b.iii. If LSB(fn) is not set, right-shift both fn and sn equally until either
            # LSB(fn) is set or fn is 0.
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            # 6b. Otherwise, set sr to HASH(0x01 || sr || c).
            sr = node_hash(sr, c)
        # 6c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # Step 7: fr must equal first_hash, sr must equal second_hash, and sn must be 0.
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise RootMismatchError(old_root, fr, what="old root")
    if sr != new_root:
        raise RootMismatchError(new_root, sr, what="new root")


# -- the incremental, stored tree ----------------------------------------------------------


class NodeStore(Protocol):
    """Where :class:`MerkleTree` keeps its nodes.

    Node ``(level, index)`` is the hash of the complete, aligned subtree over leaves
    ``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes. Only
    complete subtrees are stored, so a stored node never changes.
    """

    def get(self, level: int, index: int) -> bytes:
        """The hash of node ``(level, index)``; raises ``KeyError`` if it is not stored."""
        ...

    def put_many(self, items: Iterable[tuple[int, int, bytes]]) -> None:
        """Store nodes given as ``(level, index, hash)``."""
        ...


class MemoryNodeStore:
    """A :class:`NodeStore` in a dict. Refuses to change a node once stored."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}

    def get(self, level: int, index: int) -> bytes:
        """The hash of node ``(level, index)``; raises ``KeyError`` if it is not stored."""
        return self.nodes[(level, index)]

    def put_many(self, items: Iterable[tuple[int, int, bytes]]) -> None:
        """Store nodes; raises ``ValueError`` (storing none) if one would change."""
        items = list(items)
        for level, index, value in items:
            old = self.nodes.get((level, index))
            if old is not None and old != value:
                raise ValueError(f"node ({level}, {index}) is already stored with another hash")
        for level, index, value in items:
            self.nodes[(level, index)] = value

    def __len__(self) -> int:
        return len(self.nodes)


def nodes_for_append(
    existing_size: int,
    leaf_hashes: Sequence[bytes],
    get: Callable[[int, int], bytes],
) -> list[Node]:
    """The nodes that appending ``leaf_hashes`` to a tree of ``existing_size`` leaves creates.

    Returns every node whose subtree becomes complete: the new leaves at level 0, then each
    level's new parents, as ``(level, index, hash)`` ordered by level then index. ``get`` reads
    the existing tree (``NodeStore.get``); it is called at most once per level, only for the
    left siblings of the new nodes, which are perfect subtrees ending at ``existing_size``, so
    O(log n) reads. Nothing is written: a caller may compute a block's nodes before committing.

    Raises ``ValueError`` for a negative size or a hash that is not 32 bytes.
    """
    if existing_size < 0:
        raise ValueError(f"negative tree size {existing_size}")
    for i, h in enumerate(leaf_hashes):
        if len(h) != HASH_SIZE:
            raise ValueError(f"leaf hash {i} is {len(h)} bytes, want {HASH_SIZE}")
    nodes: list[Node] = [(0, existing_size + i, h) for i, h in enumerate(leaf_hashes)]
    level = 0
    lo = existing_size  # index of the first new node at `level`
    current = list(leaf_hashes)  # the new nodes at `level`, indices lo .. lo + len - 1
    while current:
        hi = lo + len(current)
        # Parent j at level + 1 covers children 2j and 2j + 1; it is new when its right child
        # is new (2j + 1 >= lo) and exists (2j + 1 < hi): j in [lo // 2, hi // 2).
        parent_lo = lo // 2
        parents: list[bytes] = []
        for j in range(parent_lo, hi // 2):
            left_index = 2 * j
            # Only the first parent can have an old left child (when lo is odd).
            left = current[left_index - lo] if left_index >= lo else get(level, left_index)
            parents.append(node_hash(left, current[left_index + 1 - lo]))
        nodes.extend((level + 1, parent_lo + i, h) for i, h in enumerate(parents))
        level += 1
        lo = parent_lo
        current = parents
    return nodes


class MerkleTree:
    """An append-only RFC 9162 Merkle tree over a :class:`NodeStore`.

    ``store`` must hold every complete subtree node of the first ``size`` leaves. Appending and
    every query cost O(log n) ``store.get`` calls; the answers equal the reference functions'
    (:func:`root`, :func:`inclusion_proof`, :func:`consistency_proof`) byte for byte, for the
    current size or any earlier one.

    Not thread-safe. If writing the appended nodes fails (say the surrounding database
    transaction rolls back), build a new tree from the store and the size it really holds.
    Invalid requests (an index or size out of range) raise ``ValueError``; a store missing a
    node it should hold raises ``KeyError``.
    """

    def __init__(self, store: NodeStore, size: int = 0) -> None:
        if size < 0:
            raise ValueError(f"negative tree size {size}")
        self._store = store
        self._size = size

    @property
    def size(self) -> int:
        """The number of leaves."""
        return self._size

    def append(self, leaf_data: bytes) -> int:
        """Append one leaf (its data, hashed here) and return its index."""
        index = self._size
        self.append_leaf_hashes([leaf_hash(leaf_data)])
        return index

    def append_leaf_hashes(self, hashes: Iterable[bytes]) -> list[Node]:
        """Append leaves given by their leaf hashes; return the new nodes.

        The new nodes (see :func:`nodes_for_append`) go to the store in one ``put_many`` call
        (none if ``hashes`` is empty); the size advances only once that call returns. The list
        is returned too, so a caller can write the nodes along with the block that adds them.
        """
        batch = list(hashes)
        nodes = nodes_for_append(self._size, batch, self._store.get)
        if nodes:
            self._store.put_many(nodes)
        self._size += len(batch)
        return nodes

    def root(self, size: int | None = None) -> bytes:
        """``MTH`` of the first ``size`` leaves (default: all), ``EMPTY_ROOT`` for size 0."""
        return self._range_hash(0, self._check_size(size))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """``PATH(index, D[size])`` (RFC 9162 2.1.3.1); ``size`` defaults to the current size.

        Raises ``ValueError`` unless ``0 <= index < size <= self.size``.
        """
        size = self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is out of range for tree size {size}")
        # Walk the PATH recursion from the top: each step keeps the half holding the leaf and
        # records the other half's MTH. PATH lists the deepest sibling first, hence the reverse.
        proof: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            k = _split(hi - lo)
            if index < lo + k:  # PATH(m, D[0:k]) : MTH(D[k:n])
                proof.append(self._range_hash(lo + k, hi))
                hi = lo + k
            else:  # PATH(m - k, D[k:n]) : MTH(D[0:k])
                proof.append(self._range_hash(lo, lo + k))
                lo += k
        proof.reverse()
        return proof

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """``PROOF(old_size, D[new_size])`` (RFC 9162 2.1.4.1); ``new_size`` defaults to the
        current size. Empty when the sizes are equal.

        Raises ``ValueError`` unless ``0 < old_size <= new_size <= self.size``.
        """
        new_size = self._check_size(new_size)
        if not 0 < old_size <= new_size:
            raise ValueError(
                f"old size {old_size} is not in 1..{new_size}: no consistency proof exists"
            )
        # Walk the SUBPROOF recursion from the top, as in inclusion_proof.
        proof: list[bytes] = []
        m, lo, hi, b = old_size, 0, new_size, True  # SUBPROOF(m, D[lo:hi], b)
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= k:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
                proof.append(self._range_hash(lo + k, hi))
                hi = lo + k
            else:  # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
                proof.append(self._range_hash(lo, lo + k))
                m -= k
                lo += k
                b = False
        if not b:  # SUBPROOF(m, D[m], false) = {MTH(D[m])}; with b true it is {}.
            proof.append(self._range_hash(lo, hi))
        proof.reverse()
        return proof

    def _check_size(self, size: int | None) -> int:
        if size is None:
            return self._size
        if not 0 <= size <= self._size:
            raise ValueError(f"size {size} is not in 0..{self._size}")
        return size

    def _range_hash(self, begin: int, end: int) -> bytes:
        """``MTH(D[begin:end])``, from ``popcount(end - begin)`` store reads.

        The range must start on a multiple of the smallest power of two that is at least its
        length, as every range in the RFC recursions does. It is then a run of perfect subtrees
        of strictly decreasing size, each a stored node, and its MTH (split at the largest
        power of two below the length, RFC 9162 2.1.1) is their right-to-left fold.
        """
        if begin == end:
            return EMPTY_ROOT
        parts: list[bytes] = []
        pos = begin
        while pos < end:
            level = (end - pos).bit_length() - 1  # largest perfect subtree that fits
            if pos & ((1 << level) - 1):
                raise AssertionError(f"range [{begin}, {end}) is not aligned")
            parts.append(self._store.get(level, pos >> level))
            pos += 1 << level
        result = parts.pop()
        while parts:
            result = node_hash(parts.pop(), result)
        return result
