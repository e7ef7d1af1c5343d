"""Cell key perturbation of the counts planners see: differencing two answers gives no exact
small count.

Cell suppression inside one table cannot stop a planner from subtracting two answers of a
flexible report (all districts against all but one, one day more or less, one venue fewer).
Statistical agencies answer flexible tables with the cell key method, which we follow:

- Fraser, B. and Wooton, J. (2005), "A proposed method for confidentialising tabular output
  to protect against differencing", UNECE Work Session on Statistical Data Confidentiality;
  Thompson, Broadfoot and Elazar (2013), "Methodology for the automatic confidentialisation of
  statistical outputs from remote servers at the Australian Bureau of Statistics"
  (TableBuilder). Every record carries a fixed random record key; a cell's key is the sum of
  its records' keys modulo the key range; a fixed perturbation table maps the cell's value and
  key to a small noise. The same cell always gets the same noise (asking again tells nothing
  new); cells that differ by even one record get independent-looking noise.
- ONS, cell-key-perturbation (the method of the 2021 Census tables, github.com/ONSdigital/
  cell-key-perturbation): record keys 0-255, cell key = sum mod 256, the table looked up by
  cell value and cell key, rows of the table reused for large values, small counts removed
  after perturbation ("threshold").
- Giessing (2016), "Computational issues in the design of transition probabilities and
  disclosure risk estimation for additive noise" (PSD 2016, LNCS 9867), as implemented in the
  R package ptable (sdcTools/ptable, create_cnt_ptable(D, V)): the noise distribution of each
  cell value has the maximum entropy under: noise within +-D, zero mean (unbiased), variance V,
  no negative result; a zero stays zero.

Here: D = 2, V = 1 (the ptable vignette's example); the probabilities were solved with that
maximum-entropy rule and written out in 256ths (one per cell key) below, keeping the mean
exactly zero. Record keys are not stored: each statement computes them from a per-deployment
secret (table `report_key_secret`, made by migration 0009, readable by the service role only,
so every replica agrees) and the fact's stable identity: sha256(secret || kind || id), first
byte. Only the cell keys leave the database (one sum per cell), never a record key.

After perturbation the small-cell rules of the reports still apply (no shown 1-4). Totals get
their own key from all their facts, so they need not equal the sum of the rows.
"""

from __future__ import annotations

KEY_RANGE = 256
MAX_NOISE = 2  # D
SECRET_TABLE = "report_key_secret"

# The kinds of facts a record key is computed for (one byte each in the hashed message): the
# same registration has the same key in every report, a participant the key of the resident.
KINDS = {"registration": 0x72, "visit": 0x76, "follow_up": 0x66, "resident": 0x70,
         "session": 0x73}

# The perturbation table (ptable, D = 2, V = 1): for a cell value, how many of the 256 cell
# keys give each noise. Maximum entropy: value 1 -> -1: 0.398, 0: 0.306, +1: 0.194, +2: 0.102
# (a 1 can become 0 but never less); 2 and more -> -2: 0.064, -1: 0.245, 0: 0.383, +1: 0.245,
# +2: 0.064 (the same distribution for every larger value, as in ptable).
_PTABLE: dict[int, tuple[tuple[int, int], ...]] = {
    1: ((-1, 102), (0, 78), (1, 50), (2, 26)),
    2: ((-2, 16), (-1, 63), (0, 98), (1, 63), (2, 16)),
}


def _row(counts: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    """The noise for each cell key 0-255: consecutive key intervals, in order of the noise
    (the interval form of ptable and TauArgus)."""
    noise = tuple(v for v, n in counts for _ in range(n))
    if len(noise) != KEY_RANGE:
        raise ValueError("a row of the perturbation table must cover the 256 cell keys")
    return noise


NOISE: tuple[tuple[int, ...], ...] = (
    (0,) * KEY_RANGE,  # zero stays zero
    _row(_PTABLE[1]),
    _row(_PTABLE[2]),
)


def perturb(value: int, cell_key: int | None) -> int:
    """The count a planner sees for a cell of `value` facts whose record keys sum to
    `cell_key` (any integer: taken modulo 256). Never negative; 0 stays 0."""
    if value == 0:
        return 0
    if cell_key is None:
        # fail closed: a cell with facts but no key means the secret is missing
        raise RuntimeError(f"no cell key: the table {SECRET_TABLE} has no secret")
    return value + NOISE[min(value, len(NOISE) - 1)][int(cell_key) % KEY_RANGE]


def cell_key(*keys: int | None) -> int | None:
    """The key of a cell made of other cells' facts (a total): the sum of their keys."""
    present = [int(k) for k in keys if k is not None]
    return sum(present) % KEY_RANGE if present else None


def record_key(kind: str, id_sql: str, flag: str) -> str:
    """SQL: the record key (0-255) of the fact of `kind` whose id is `id_sql`, or NULL when
    the boolean parameter `flag` (e.g. "$10") is false (staff: nothing to compute).

    sha256(secret || kind byte || the id as 8 bytes), first byte: keyed, so nobody without
    the secret can tell a record's key from its id; the uncorrelated sub-select is read once
    per statement."""
    return (f"CASE WHEN {flag} THEN get_byte(sha256((SELECT secret FROM {SECRET_TABLE}) || "
            f"'\\x{KINDS[kind]:02x}'::bytea || int8send(({id_sql})::bigint)), 0) END")
