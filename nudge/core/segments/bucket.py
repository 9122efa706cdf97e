"""Stable random buckets: the same (salt, user id) lands in the same bucket 0..99 everywhere.

bucket = int(first 8 hex digits of md5("<salt>:<user id>"), 16) % 100

Python (``bucket_of``, used by the journey engine for holdouts and splits) and SQL
(``bucket_sql``, used by the ``random_bucket`` condition) compute the same number. The SQL reads
the hex digits with ``STRPOS`` rather than a hex-to-integer cast because every warehouse has
``MD5``, ``SUBSTRING`` and ``STRPOS`` but each spells hex parsing differently.
"""

from __future__ import annotations

import hashlib

from sqlglot import exp

BUCKETS = 100
_HEX_DIGITS = 8
_HEX = "0123456789abcdef"


def bucket_of(salt: str, user_id: str) -> int:
    """The bucket (0..99) of ``user_id`` for ``salt``; a user is in ``percent`` when bucket < percent."""
    digest = hashlib.md5(f"{salt}:{user_id}".encode()).hexdigest()
    return int(digest[:_HEX_DIGITS], 16) % BUCKETS


def bucket_sql(salt: str, user_id: exp.Expression) -> exp.Expression:
    """SQL computing ``bucket_of(salt, user_id)``: the first 8 hex digits of the digest summed with
    their place values (at most 16**8, well within BIGINT), mod 100.

    The digest is written once per digit rather than in a derived table: a derived table correlated
    with the outer user row is not allowed everywhere (BigQuery, Snowflake).
    """
    digest = exp.MD5(
        this=exp.DPipe(this=exp.Literal.string(f"{salt}:"), expression=user_id, safe=True)
    )
    place_values = [
        exp.Mul(
            this=exp.paren(
                exp.Sub(
                    this=exp.StrPosition(
                        this=exp.Literal.string(_HEX),
                        substr=exp.Substring(
                            this=digest.copy(),
                            start=exp.Literal.number(i + 1),
                            length=exp.Literal.number(1),
                        ),
                    ),
                    expression=exp.Literal.number(1),
                )
            ),
            # BIGINT: 15 * 16**7 overflows a 32-bit INTEGER (Postgres' type of small literals).
            expression=exp.cast(exp.Literal.number(16 ** (_HEX_DIGITS - 1 - i)), "BIGINT"),
        )
        for i in range(_HEX_DIGITS)
    ]
    total: exp.Expression = place_values[0]
    for term in place_values[1:]:
        total = exp.Add(this=total, expression=term)
    return exp.Mod(this=exp.paren(total), expression=exp.Literal.number(BUCKETS))
