"""The customers of a plan: who may be contacted, and the draw of contacts and holdouts.

:func:`exclusions` applies consent and suppression (a consent column, a list of ids, a
last-contact date within ``suppress_days``); :func:`assign` draws, per targeted segment
and in the order of a seeded hash of the ids, the random holdout first and then the
contacts of each campaign × channel; everyone else keeps the reason they are left out. Every customer ends
with exactly one reason, so the counts by reason add up to the customers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from segkit.core.checks import check_columns
from segkit.core.errors import SegkitError
from segkit.core.words import NO_WORDS, YES_WORDS
from segkit.segment.sample import hash_order

#: Why a customer is or is not in the contact list (every customer has exactly one).
CONTACTED, HOLDOUT = "contacted", "holdout"
NO_CONSENT, SUPPRESSED, NO_SEGMENT = "no consent", "suppressed", "no segment"
TOO_SMALL, NOT_PROVEN, BELOW_BUDGET = "segment too small", "no proven profit", "below budget"
REASONS = (
    CONTACTED,
    HOLDOUT,
    NO_CONSENT,
    SUPPRESSED,
    NO_SEGMENT,
    TOO_SMALL,
    NOT_PROVEN,
    BELOW_BUDGET,
)
#: ``reason_code`` of the contact file, for the CRM.
REASON_CODES = {CONTACTED: "proven_profit", HOLDOUT: "random_holdout"}
#: Consent values read as "yes" (case-insensitive); anything else, missing included, is "no".
YES = (
    frozenset({"1", "1.0", "opt-in", "opt_in", "optin", "opted_in", "subscribed", "granted"})
    | YES_WORDS  # "yes", "ja", "oui"…
)
#: Consent values that say no, as CRMs and mail tools export them (Klaviyo's
#: NEVER_SUBSCRIBED, Shopify's not_subscribed and pending: a double opt-in not confirmed).
NO = (
    frozenset(
        "0 0.0 opt-out opt_out optout opted_out unsubscribed never_subscribed not_subscribed "
        "pending denied revoked redacted invalid".split()
    )
    | NO_WORDS
)

#: A column saying a customer agreed to be contacted (Shopify's "Accepts Email Marketing",
#: "newsletter_opt_in", "Werbeeinwilligung"), in the languages of segkit.scaffold.infer.
_ACCEPTS_TEXT = r"accepts?[ _.-]*(?:e-?mail|sms|marketing|newsletter|contact)"
_ACCEPTS = re.compile(_ACCEPTS_TEXT, re.IGNORECASE)
CONSENT_NAMES = re.compile(
    rf"consent|opt[ _.-]?in|{_ACCEPTS_TEXT}|"
    r"marketing[ _.-]*(?:ok|allowed|permission|opt)|newsletter|subscribed|"
    r"einwillig|werbeerlaubnis|consentement|consentimiento|consenso|toestemming",
    re.IGNORECASE,
)
#: The opposite: a column saying a customer refused contact (Salesforce's "Email Opt Out",
#: "do_not_mail", "Werbesperre"); never a consent column as is. ("Unsubscribed" reads as a
#: result first: an outcome, as before.)
OPT_OUT_NAMES = re.compile(
    r"opt[ _.-]?out|unsubscri|do[ _.-]?not|don.?t|\bno[ _.-]?(?:e-?mail|mail|contact|call)|"
    r"blacklist|blocklist|abgemeldet|abmeld|widerruf|sperr|d[ée]sinscri|d[ée]sabonn|baja|"
    r"disiscri|afgemeld",
    re.IGNORECASE,
)


def consent_columns(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """``(consent, opt_out)``: the columns named like a consent (:data:`CONSENT_NAMES`)
    and like a refusal (:data:`OPT_OUT_NAMES`), whose every value is a yes or a no (the
    words of :mod:`segkit.core.words`, 1/0, true/false); e-mail consent first. A name
    that also reads as a result (``newsletter_response``) stays an outcome, unless it is
    an "accepts e-mail/SMS/marketing" one.

    >>> t = pd.DataFrame({"Accepts SMS Marketing": ["no", "yes"], "Email Opt In": [1, 0],
    ...                   "Email Opt Out": [True, False], "Income": [1, 2]})
    >>> consent_columns(t)
    (['Email Opt In', 'Accepts SMS Marketing'], ['Email Opt Out'])
    >>> consent_columns(pd.DataFrame({"Email Marketing Consent": ["SUBSCRIBED", "NEVER_SUBSCRIBED"]}))
    (['Email Marketing Consent'], [])
    """
    from segkit.segment.prepare import OUTCOME_NAMES  # scikit-learn: imported when needed

    answers = YES | NO
    consent: list[str] = []
    opt_out: list[str] = []
    for col in table.columns:
        name = str(col)
        if OUTCOME_NAMES.search(name) and not _ACCEPTS.search(name):
            continue  # a result ("newsletter_response", "AcceptedCmp1"), as before
        refusal = bool(OPT_OUT_NAMES.search(name))
        if not (refusal or CONSENT_NAMES.search(name)):
            continue
        values = table[col].dropna()
        text = values.astype("string").str.strip().str.lower()
        if values.empty or not text.isin(answers).all():
            continue
        (opt_out if refusal else consent).append(name)
    email = re.compile(r"e-?mail|newsletter|courriel|correo", re.IGNORECASE)
    return sorted(consent, key=lambda c: not email.search(c)), opt_out


CONTACT_COLUMNS = [
    "customer_id",
    "segment",
    "segment_name",
    "campaign",
    "channel",
    "holdout",
    "expected_clv",
    "reason_code",
]


def consent(values: pd.Series) -> np.ndarray:
    """True where a consent value says yes (see :data:`YES`); missing is no.

    >>> consent(pd.Series([1, 0, "Yes", None, True])).tolist()
    [True, False, True, False, True]
    """
    text = values.astype("string").str.strip().str.lower()
    return text.isin(YES).fillna(False).to_numpy(bool)


def exclusions(
    customers: pd.DataFrame,
    *,
    consent_column: str | None = None,
    suppressed_ids: Iterable[str] = (),
    last_contact_column: str | None = None,
    suppress_days: int = 0,
    date: pd.Timestamp | None = None,
) -> np.ndarray:
    """Per customer, why they may not be contacted (``""``: they may).

    ``no consent`` first (the column says no or is empty), then ``suppressed`` (the id is
    on the suppression list, or the last contact is fewer than ``suppress_days`` days
    before ``date``).

    Raises
    ------
    SegkitError
        A named column missing from the customers, or a last-contact value that is not a
        date.
    """
    out = np.full(len(customers), "", dtype=object)
    if consent_column:
        check_columns(customers, [consent_column], "customers (plan.consent_column)")
        out[~consent(customers[consent_column])] = NO_CONSENT
    ids = set(map(str, suppressed_ids))
    if ids:
        out[(out == "") & customers["customer_id"].astype(str).isin(ids).to_numpy()] = SUPPRESSED
    if last_contact_column and suppress_days > 0:
        check_columns(customers, [last_contact_column], "customers (plan.last_contact_column)")
        raw = customers[last_contact_column]
        last = pd.to_datetime(raw, errors="coerce", format="mixed")
        bad = last.isna() & raw.notna() & (raw.astype("string").str.strip() != "")
        if bad.any():
            example = raw[bad].iloc[0]
            raise SegkitError(
                f"customers column {last_contact_column!r} (plan.last_contact_column): "
                f"{int(bad.sum()):,} values are not dates, e.g. {example!r}; expected YYYY-MM-DD"
            )
        if date is None:
            date = last.max()
        recent = ((date - last).dt.days < suppress_days).fillna(False).to_numpy(bool)
        out[(out == "") & recent] = SUPPRESSED
    return out


def draw_prefix(seed: int) -> str:
    """The prefix of the draw's key: customers are drawn in the order of
    ``sha256(f"{seed}:plan:{customer_id}")``, in pandas and on the engines alike
    (:mod:`segkit.engine.contacts`), and apart from the fit sample's order."""
    return f"{int(seed)}:plan:"


def assign(
    frame: pd.DataFrame,
    contacts: pd.DataFrame,
    holdouts: dict[str, int],
    seed: int,
) -> pd.DataFrame:
    """Draw holdouts and contacts within each targeted segment.

    Parameters
    ----------
    frame
        One row per customer: ``customer_id``, ``segment`` (text), ``reason`` (``""`` for
        a customer that may be contacted in a targeted segment, else why not).
    contacts
        Rows with ``segment``, ``campaign``, ``channel``, ``contacts`` > 0, in the order
        they are drawn.
    holdouts
        Segment -> holdout size; the holdout gets the campaign of the segment's first row.
    seed
        Seed of the draw: within each segment the customers are taken in the order of
        ``sha256(f"{seed}:plan:{customer_id}")`` (:func:`draw_prefix`), the same on
        every engine and whatever the row order.

    Returns
    -------
    pandas.DataFrame
        ``frame`` with ``reason`` filled (contacted, holdout, below budget: every customer
        still without a reason, in a segment that was targeted but not drawn in full) and
        ``campaign``, ``channel``, ``holdout`` for those contacted or held out.
    """
    out = frame.copy()
    out["campaign"] = pd.Series(pd.NA, index=out.index, dtype="string")
    out["channel"] = pd.Series(pd.NA, index=out.index, dtype="string")
    out["holdout"] = False
    reason = out["reason"].to_numpy(object).copy()
    camp = np.full(len(out), None, dtype=object)
    chan = np.full(len(out), None, dtype=object)
    seg_values = out["segment"].astype("string")
    ids = out["customer_id"].reset_index(drop=True)
    for seg in sorted(set(contacts["segment"].astype(str))):
        rows = contacts[contacts["segment"].astype(str) == seg]
        here = (seg_values == seg).fillna(False).to_numpy(bool)
        pool = np.flatnonzero(here & (reason == ""))
        pool = pool[hash_order(ids.iloc[pool], draw_prefix(seed), where="plan customers")]
        h = int(holdouts.get(seg, 0))
        first = rows.iloc[0]
        take = pool[:h]
        reason[take], camp[take], chan[take] = HOLDOUT, first["campaign"], first["channel"]
        start = h
        for r in rows.itertuples():
            take = pool[start : start + int(r.contacts)]
            reason[take], camp[take], chan[take] = CONTACTED, r.campaign, r.channel
            start += int(r.contacts)
    # the rest of the targeted segments, those that got no contacts included
    reason[reason == ""] = BELOW_BUDGET
    out["reason"] = reason
    out["campaign"] = pd.array(camp, dtype="string")
    out["channel"] = pd.array(chan, dtype="string")
    out["holdout"] = reason == HOLDOUT
    return out


def contact_list(assigned: pd.DataFrame) -> pd.DataFrame:
    """The file for the CRM: one row per customer contacted or held out
    (:data:`CONTACT_COLUMNS`), contacts first, by segment and customer id."""
    keep = assigned[assigned["reason"].isin([CONTACTED, HOLDOUT])]
    out = pd.DataFrame(
        {
            "customer_id": keep["customer_id"].astype(str),
            "segment": keep["segment"].astype(str),
            "segment_name": keep["segment_name"].astype("string"),
            "campaign": keep["campaign"],
            "channel": keep["channel"],
            "holdout": keep["holdout"].astype(bool),
            "expected_clv": keep["expected_clv"].astype(float),
            "reason_code": keep["reason"].map(REASON_CODES),
        }
    )
    return out.sort_values(["holdout", "segment", "customer_id"], ignore_index=True)


def reason_counts(assigned: pd.DataFrame) -> pd.DataFrame:
    """Customers per reason (every reason listed, zeros included), with the total."""
    counts = assigned["reason"].value_counts().reindex(list(REASONS), fill_value=0)
    out = counts.rename_axis("reason").reset_index(name="customers")
    return pd.concat(
        [out, pd.DataFrame({"reason": ["total"], "customers": [int(counts.sum())]})],
        ignore_index=True,
    )
