"""The roles of a file's columns, per shape, with the reason for each: ``segkit init --from``.

:func:`guess` profiles a file (:mod:`segkit.scaffold.infer`), decides its shape and returns one
:class:`~segkit.scaffold.infer.Guess` per table spec it becomes (an experiment file that also holds
customer attributes becomes two: ``experiment`` and ``customers`` reading the same file).

A customer table's roles are the clustering stage's own: the file is loaded with
:func:`segkit.io.load.load_customers` (dates become ``days_since_<column>``), outcomes come
from :func:`segkit.segment.prepare.infer_outcomes`, features from
:func:`segkit.segment.prepare.default_features` and :func:`segkit.segment.prepare.prepare`,
and the reason a column is left out from :func:`segkit.segment.roles.feature_table`. Added
here: whole-number codes with few levels named like a code (``Region`` 1/2/3) are
categories, and the value column (:func:`value_choice`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from segkit.abtest.evaluation import choose_control
from segkit.core.errors import SegkitError
from segkit.core.words import NO_WORDS, YES_WORDS
from segkit.io import clean
from segkit.io.load import load_customers
from segkit.plan.customers import consent_columns
from segkit.scaffold import infer as inf
from segkit.segment.prepare import (
    OUTCOME_NAMES,
    default_features,
    infer_outcomes,
    is_skewed,
    prepare,
)
from segkit.segment.roles import Declared, feature_table

#: Whole-number columns with at most this many levels, named like a code, are categories.
CODE_LEVELS = 6
_CODE = re.compile(
    r"region|channel|type|code|class|categor|status|group|zone|area|segment|gender|sex|"
    r"country|city|state|store|branch|tier|level|"
    # the same in the languages of segkit.scaffold.infer's column names
    r"kanal|canal|typ|klasse|gruppe|groupe|grupo|zona|geschlecht|sexe|sexo|genere|^land$|"
    r"pays|pa[íi]s|stadt|ville|ciudad|citt|filiale|stufe|niveau|nivel|kategor|cat[ée]gor",
    re.IGNORECASE,
)
#: Columns named like money spent with the company (``MntWines``, ``total_spend``).
_MONEY = re.compile(
    r"^mnt|amount|revenue|spend|spent|sales|monetary|value|turnover|paid|dollar|euro|^history$|"
    r"umsatz|betrag|ausgaben|montant|d[ée]penses|gasto|importe|spesa|bedrag|omzet|uitgaven|"
    r"fatturato|\bvalor\b",
    re.IGNORECASE,
)
#: Money that is not value to the company, and counts that are not money.
_NOT_MONEY = re.compile(
    r"income|salary|wage|num|count|visit|purchases|kid|teen|child|age|year|recency|days|tenure|"
    r"einkommen|gehalt|lohn|anzahl|\balter\b|jahr|\btage\b|revenu\b|salaire|ingreso|sueldo|"
    r"edad|\ba[ñn]os?\b|reddito|stipendio|et[àa]\b|inkomen|salaris|leeftijd|jaar|aantal",
    re.IGNORECASE,
)
#: A money-like column found by its values has at least this many distinct values.
MIN_MONEY_LEVELS = 20


def _pct(n: int, of: int) -> str:
    """``n`` as a share of ``of``, as a whole percentage."""
    return f"{n / of:.0%}" if of else "0%"


def _dates(c: inf.Column) -> str:
    """'98% of values parse as dates' (and of how many sampled values)."""
    of = f" (of {c.sampled:,} sampled)" if c.sampled < c.present else ""
    return f"{_pct(c.dates, c.sampled)} of values parse as dates{of}"


# --------------------------------------------------------------------------- transactions


def _amount_roles(p: inf.Profile, taken: set[str]) -> tuple[dict[str, str], dict[str, str], list]:
    """(role -> column, column -> why, todo) for amount, quantity and unit price."""
    nums = [c for c in p.columns.values() if c.is_numeric and c.name not in taken]
    # a price named as a total (total_price, Gesamtpreis) is a row's money, not a unit price
    unit = [c for c in nums if inf.PRICE_NAME.search(c.name) and not inf.TOTAL_NAME.search(c.name)]
    named = [
        c
        for c in nums
        if c not in unit and (inf.AMOUNT_NAME.search(c.name) or inf.TOTAL_NAME.search(c.name))
    ]
    price = unit
    qty = [c for c in nums if inf.QUANTITY_NAME.search(c.name) and c.integer == c.numeric]
    if p.options.get("header") is False and not named:  # no names: decimals mean money
        named = sorted((c for c in nums if c.integer < c.numeric), key=lambda c: -c.distinct)
    roles: dict[str, str] = {}
    why: dict[str, str] = {}
    todo: list[str] = []
    named.sort(key=lambda c: -c.present)  # a line's amount before an order's total
    lines = min(price[0].present, qty[0].present) if price and qty else 0
    if named and named[0].present < 0.9 * lines:
        # an order's total on its first line only (Shopify's Subtotal and Total): quantity
        # x unit price keeps every line, with its product
        roles["quantity"], roles["unit_price"] = qty[0].name, price[0].name
        why[price[0].name] = (
            f"unit price: named like a price; amount = quantity x unit price ("
            f"{named[0].name} is filled on {named[0].present:,} of {p.rows:,} rows only, like "
            "an order total on its first line)"
        )
    elif named:
        roles["amount"] = named[0].name
        how = (
            "named like money" if inf.AMOUNT_NAME.search(named[0].name) else "numbers with decimals"
        )
        why[named[0].name] = f"amount: {how}, the money of each row"
    elif price and qty:
        roles["quantity"], roles["unit_price"] = qty[0].name, price[0].name
        why[price[0].name] = "unit price: named like a price; amount = quantity x unit price"
    elif price:
        roles["amount"] = price[0].name
        why[price[0].name] = "amount: the only money-like column (named like a price)"
        todo.append(f"{price[0].name!r} is named like a unit price: map quantity if there is one")
    if qty and "quantity" not in roles and qty[0].name not in roles.values():
        roles["quantity"] = qty[0].name
    if "quantity" in roles:
        why[roles["quantity"]] = "quantity: whole numbers named like a count of items"
    if "amount" not in roles and "unit_price" not in roles:
        raise inf.init_error(
            p.path,
            "looks like a transaction log (an id repeated over rows and a date) but no "
            "column is an amount (numbers named like amount/revenue/sales/value/price, or a "
            f"quantity and a unit price); {inf.seen(p)}",
        )
    return roles, why, todo


def _optional_roles(p: inf.Profile, taken: set[str]) -> dict[str, str]:
    """Order id, product, category, channel, country: the first column named like each."""
    out: dict[str, str] = {}
    for role, pattern in inf.OPTIONAL_NAMES.items():
        for c in p.columns.values():
            money = inf.AMOUNT_NAME.search(c.name) or inf.PRICE_NAME.search(c.name)
            fractional = c.numeric and c.integer < c.numeric
            if c.name in taken or money or fractional or not pattern.search(c.name):
                continue
            out[role] = c.name
            taken.add(c.name)
            break
    if "order_id" not in out:  # Shopify names its orders "#1001" in a column "Name"
        for c in p.columns.values():
            if c.name not in taken and not c.numeric and inf.hash_numbered(p, c.name):
                out["order_id"] = c.name
                taken.add(c.name)
                break
    return out


def _transactions(p: inf.Profile) -> inf.Guess:
    """A transaction log's column mapping, cancellations, day order and zero amounts."""
    cid, date = inf.id_column(p), inf.date_column(p)
    assert cid is not None and date is not None  # decide_shape checked
    ids = inf.distinct_ids(p, cid.name)
    columns = {"customer_id": cid.name, "timestamp": date.name}
    no_id = p.rows - cid.present
    why = {
        cid.name: f"customer id: {ids:,} ids over {cid.present:,} rows (customers buy again)",
        date.name: f"timestamp: {_dates(date)}",
    }
    if no_id:
        why[cid.name] += f"; {no_id:,} rows without one are rejected"
    spec: dict[str, Any] = dict(p.options)
    dayfirst, order = inf.day_order(p, date.name)
    why[date.name] += f"; {order}"
    taken = {cid.name, date.name}
    roles, money_why, todo = _amount_roles(p, taken)
    if dayfirst is not None:
        spec["dayfirst"] = dayfirst
        todo.append(f"dayfirst: {date.name}: {order.removeprefix('TODO: ')}")
    columns.update(roles)
    why.update(money_why)
    taken |= set(roles.values())
    optional = _optional_roles(p, taken)
    columns.update(optional)
    for role, col in optional.items():
        why[col] = f"{role.replace('_', ' ')}: named like one"
        if role == "order_id" and not inf.OPTIONAL_NAMES[role].search(col):
            why[col] = "order id: every value is '#' and a number, as shops number orders"
    spec["columns"] = columns
    total = _order_totals(p, columns, why, todo, taken) if "order_id" in optional else None
    money = {r: c for r, c in columns.items() if r in ("amount", "quantity", "unit_price")}
    cents = [c for r, c in money.items() if r != "quantity" and inf.CENTS_NAME.search(c)]
    if cents and all(p.columns[c].integer == p.columns[c].numeric for c in cents):
        spec["cents"] = True
        why["cents"] = f"{', '.join(cents)}: whole numbers named as cents: divided by 100"
    _cleaning(p, cid.name, date, optional, taken, spec, why)
    converted = _currencies(p, money, taken, spec, why, todo)
    _refunds(p, money, taken, spec, why, todo)
    left = {c: _unused(p.columns[c]) for c in p.columns if c not in taken}
    if total:
        left[total[0]] = total[1]
    extra = {"dates": _date_range(p, date.name, spec), "customers": ids, "currency": converted}
    if not converted and "currencies" not in spec:
        extra["one_currency"] = inf.one_currency(p, set())
    if "amount" in money:
        zeros = inf.sql_count(p, f"{clean.num_expr(money['amount'], inf.read_spec(p))} = 0")
        if zeros:
            todo.append(
                f"{zeros:,} rows have amount 0: rejected as non_positive_amount unless you set "
                "allow_zero_amount: true (free items that still count as a visit)"
            )
    summary = (
        f"a transaction log: {p.rows:,} rows, {ids:,} customers; id {cid.name}, "
        f"timestamp {date.name}, " + ", ".join(f"{r} {c}" for r, c in money.items())
    )
    return inf.Guess("transactions", p, spec, why, left, todo, summary, extra)


def _order_totals(
    p: inf.Profile, columns: dict, why: dict, todo: list, taken: set[str]
) -> tuple[str, str] | None:
    """When the amount repeats its order's total on each line (WooCommerce's "Order Total
    Amount"), quantity x unit price when both are there, else a TODO; the amount column
    and why it is left out, or None."""
    amount = columns.get("amount")
    if amount is None:
        return None
    multi, same = inf.repeated_totals(p, amount, columns["order_id"])
    if multi < 20 or same < 0.8 * multi:
        return None
    said = (
        f"{amount} repeats the order's total on each of its lines, in {same:,} of {multi:,} "
        "orders with several"
    )
    nums = [c for c in p.columns.values() if c.is_numeric and c.name not in taken]
    price = next((c.name for c in nums if inf.PRICE_NAME.search(c.name)), None)
    qty = columns.get("quantity") or next(
        (
            c.name
            for c in nums
            if inf.QUANTITY_NAME.search(c.name) and c.integer == c.numeric and c.name != price
        ),
        None,
    )
    if price is None or qty is None:
        todo.append(
            f"{said}: revenue counts it once per line. Map the line's amount, or quantity and "
            "unit_price, or give one row per order"
        )
        return None
    del columns["amount"]
    columns["quantity"], columns["unit_price"] = qty, price
    why[qty] = "quantity: whole numbers named like a count of items"
    why[price] = f"unit price: named like a price; amount = quantity x unit price: {said}"
    taken.discard(amount)
    taken |= {qty, price}
    return amount, "the order's total repeated on each line: quantity x unit price instead"


def _cleaning(
    p: inf.Profile,
    cid: str,
    date: inf.Column,
    optional: dict,
    taken: set[str],
    spec: dict,
    why: dict,
) -> None:
    """Cancellations, one place's UTC offsets, placeholder ids and order statuses into
    ``spec``."""
    if "order_id" in optional:
        found = inf.cancel_prefix(p, optional["order_id"])
        if found:
            spec["cancel_prefix"] = found[0]
            why["cancel_prefix"] = (
                f"{found[1]:,} order ids start with {found[0]!r} followed by digits "
                "(cancellations: rejected, counted in the data-quality report)"
            )
    zones = inf.utc_offsets(p, date.name)
    minutes = sorted(int(o[0] + "1") * (int(o[1:3]) * 60 + int(o[3:])) for o in zones)
    if zones and sum(zones.values()) >= 0.5 * date.present and minutes[-1] - minutes[0] <= 60:
        # one place's offsets (+0100 in winter, +0200 in summer): its own days, not UTC's
        spec["local_time"] = True
        why["local_time"] = (
            f"timestamps carry the UTC offset{'s' * (len(zones) > 1)} {', '.join(sorted(zones))}"
            ": the day as written (the shop's), not UTC's, where a purchase after local "
            "midnight falls on the day before"
        )
    excluded, reasons = {}, []
    guests, n = inf.placeholder_ids(p, cid)
    if guests:
        excluded[cid] = guests
        reasons.append(
            f"{n:,} rows whose {cid} is {' or '.join(map(repr, guests))}, a placeholder "
            "(guest checkouts, unknown customers) that would be segmented as one customer"
        )
    status = inf.excluded_statuses(p, taken)
    if status:
        col, levels, n = status
        excluded[col] = levels
        lines = " (and the other lines of their orders)" if "order_id" in optional else ""
        reasons.append(f"{n:,} rows whose {col} says the order did not go through{lines}")
        taken.add(col)
    if excluded:
        spec["exclude_values"] = excluded
        why["exclude_values"] = (
            "; ".join(reasons) + ": rejected as excluded_value, counted in the data-quality report"
        )


def _currencies(
    p: inf.Profile, roles: dict, taken: set[str], spec: dict, why: dict, todo: list
) -> str | None:
    """``currencies`` when money is written in several, with a TODO for the rates; or the
    money converted into one currency already when there is such a column (its currency)."""
    money = roles.get("amount") or roles.get("unit_price")
    found = inf.currencies_of(p, money, taken) if money else None
    converted = inf.converted_money(p, taken) if found and found[0] else None
    if found and converted:  # converted already: no rates needed
        col, by, _ = found
        amount, code = converted
        spec["columns"]["amount"] = roles["amount"] = amount
        roles.pop("unit_price", None)
        spec["columns"].pop("unit_price", None)
        why[amount] = (
            f"amount: named like money converted into one currency{f' ({code})' if code else ''}"
            f"; {money} is in {len(by)} currencies (column {col}: {', '.join(by)})"
        )
        taken.discard(money)
        taken.add(amount)
        return code
    elif found:
        col, by, plain = found
        top = next(iter(by))
        spec["currencies"] = {"column": col, "rates": {c: (1 if c == top else None) for c in by}}
        listed = ", ".join(f"{c} {n:,} rows" for c, n in by.items())
        where = f"in column {col}" if col else f"written in the cells of {money}"
        why["currencies"] = (
            f"{len(by)} currencies {where} ({listed}): converted to {top}, the most common"
        )
        if col is None and plain:
            spec["currencies"]["default"] = top
            why["currencies"] += f"; the {plain:,} plain numbers taken to be {top}"
        todo.append(
            f"currencies.rates: how much {top} one unit of each other currency is worth "
            f"(or remove currencies if the amounts are in {top} already)"
        )
        if col:
            taken.add(col)
    return None


def _refunds(
    p: inf.Profile, money: dict, taken: set[str], spec: dict, why: dict, todo: list
) -> None:
    """``refunded``: a money column named like a refund, in the amount's own currency (a
    converted amount's refund is converted too), with some refunds in it, filled on every
    row (a refund per order on its first line only is not a row's: a TODO says so)."""
    converted = bool(clean.CONVERTED_NAMES.search(money.get("amount") or ""))
    for c in p.columns.values():
        if c.name in taken or not c.is_numeric or not inf.REFUND_NAME.search(c.name):
            continue
        if bool(clean.CONVERTED_NAMES.search(c.name)) != converted:
            continue
        n = inf.sql_count(p, f"{clean.num_expr(c.name, inf.read_spec(p))} > 0")
        if n and c.present < 0.9 * p.rows:
            todo.append(
                f"{c.name} holds refunds on {c.present:,} of {p.rows:,} rows only, like an "
                "order's refund on its first line: not taken off the revenue (refunded: "
                "takes a refund per row)"
            )
            return
        if n:
            spec["refunded"] = c.name
            why["refunded"] = (
                f"the part of each row's amount refunded ({n:,} rows with a refund): revenue "
                "counts the amount less it; a row refunded in full is rejected"
            )
            taken.add(c.name)
            return


def _unused(c: inf.Column) -> str:
    """Why a column of a transaction log is not mapped."""
    if c.is_numeric and c.integer == c.numeric:
        return "whole numbers no name marks as a role (map it as quantity if it counts items)"
    return "not a role segkit reads from a transaction log"


def _date_range(p: inf.Profile, col: str, spec: dict) -> tuple[str, str]:
    """First and last date of the log (YYYY-MM-DD), read as the loader will read them."""
    full = inf.read_spec(p)
    dayfirst = spec.get("dayfirst")
    ts = clean.ts_expr(col, full, dayfirst=True if dayfirst is None else bool(dayfirst))
    lo, hi = p.rel.aggregate(f"min({ts}), max({ts})").fetchall()[0]
    return str(pd.Timestamp(lo).date()), str(pd.Timestamp(hi).date())


# --------------------------------------------------------------------------- customers


def _codes(df: pd.DataFrame, num: list[str]) -> list[str]:
    """Numeric features that are whole-number codes with few levels named like a code."""
    out = []
    for col in num:
        v = df[col].dropna()
        whole = bool(len(v)) and bool((v == v.round()).all())
        if whole and v.nunique() <= CODE_LEVELS and _CODE.search(str(col)):
            out.append(col)
    return out


def value_choice(df: pd.DataFrame, num: list[str]) -> tuple[str | None, dict[str, str], str]:
    """(``cluster.value``, ``derive`` to add, why) from the numeric features.

    Columns named like money spent (``MntWines``, ``spend``; not income) are the value; if
    none is, non-negative strongly skewed columns (:func:`segkit.segment.prepare.is_skewed`)
    with many distinct values that are not named like a count or an age. One such column is
    the value itself; several are summed into a derived ``total_spend``.
    """
    money = [c for c in num if _MONEY.search(str(c)) and not _NOT_MONEY.search(str(c))]
    how = "named like money spent"
    if not money:
        money = [
            c
            for c in num
            if not _NOT_MONEY.search(str(c))
            and df[c].min() >= 0
            and df[c].nunique() >= max(MIN_MONEY_LEVELS, 0.1 * len(df))
            and is_skewed(df[c])
        ]
        how = (
            "no column is named like money; these are non-negative, strongly skewed "
            "amounts with many distinct values, like spend"
        )
    if not money:
        return None, {}, "no money-like column: segments are numbered by size"
    if len(money) == 1:
        return money[0], {}, f"{money[0]}: {how}"
    name = "total_spend"
    while name in df.columns:
        name = "_" + name
    expr = " + ".join(inf.quoted(str(c)) for c in money)
    return name, {name: expr}, f"the sum of {len(money)} spend columns ({how})"


def _customer_spec(
    p: inf.Profile, id_col: str | None, attributes: list[str] | None, todo: list[str]
) -> dict:
    """The read options, the id (or numbered rows), the attributes and the day order."""
    spec: dict[str, Any] = dict(p.options)
    if id_col:
        spec["columns"] = {"customer_id": id_col}
    else:
        spec["id_from_row"] = True
    if attributes is not None:
        spec["attributes"] = attributes
    for c in p.columns.values():
        if c.is_date and not c.is_numeric and "dayfirst" not in spec:
            dayfirst, order = inf.day_order(p, c.name)
            if dayfirst is not None:
                spec["dayfirst"] = dayfirst
                todo.append(f"dayfirst: {c.name}: {order.removeprefix('TODO: ')}")
    return spec


def _load(p: inf.Profile, spec: dict) -> tuple[pd.DataFrame, dict]:
    """The customer table as a run loads it (dates as days), and the loader's quality."""
    try:
        table = load_customers({"path": str(p.path), **spec})
    except SegkitError as exc:
        raise inf.init_error(p.path, f"read as a customer table: {exc}") from None
    return table.used.df(), table.quality


def _date_why(p: inf.Profile, quality: dict) -> dict[str, str]:
    """``days_since_<col>`` -> why: the share of dates and the day they count to."""
    out = {}
    for col, d in (quality.get("dates") or {}).items():
        c = p.columns[col]
        out[d["as"]] = f"{col}: {_dates(c)} -> {d['as']}, days before {d['at']}: {d['basis']}"
    return out


def _customer_why(table: pd.DataFrame, outcomes: list[str], codes: list[str]) -> dict:
    """Column -> the reason for its role, from :func:`segkit.segment.roles.feature_table`."""
    why = {}
    for row in table.itertuples():
        if row.role == "outcome":
            kind = "0/1" if row.feature in outcomes else "numeric"
            why[row.feature] = f"{kind}, named like a result -> outcome, not clustered"
        elif row.feature in codes:
            why[row.feature] = (
                "whole-number codes with few levels, named like a code -> a category, "
                f"not a quantity; {row.transform}"
            )
        elif row.used:
            why[row.feature] = str(row.transform)
        elif row.role == "summary":
            why[row.feature] = (
                "left out by segkit's default rule: a name its purchase-history summaries "
                "use (list it in cluster.features if it is an attribute of yours)"
            )
        else:
            why[row.feature] = f"{row.role}: {row.reason}"
    return why


def _consent_roles(consent: list[str], opt_out: list[str], why: dict, todo: list[str]) -> None:
    """The reasons of the consent columns (the first is ``plan.consent_column``; a second,
    e.g. for SMS, is left out) and a TODO per opt-out column, which the plan cannot take
    as it is: it says yes to a refusal."""
    for i, col in enumerate(consent):
        why[col] = (
            "consent: yes/no, named like a consent to contact -> plan.consent_column: the "
            "contact list leaves out who did not say yes; not clustered"
            if i == 0
            else f"consent: another consent column; plan.consent_column takes {consent[0]!r}"
        )
    for col in opt_out:
        why[col] = "opt-out: yes/no, named like a refusal of contact; not clustered"
        todo.append(
            f"plan.consent_column: {col!r} says who refused contact; the plan needs a "
            "column that says yes to contact: list the refusers' ids in "
            "plan.suppression_file (a CSV), or export the consent itself"
        )


def _answers_as_numbers(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns named like a result whose every value is a yes/no answer ("Réponse":
    oui/non) as 1/0, as the run reads an outcome (:func:`segkit.io.clean.flag_expr`)."""
    out = df.copy()
    for c in df.columns:
        if c == "customer_id" or not OUTCOME_NAMES.search(str(c)):
            continue
        if pd.api.types.is_numeric_dtype(df[c]) or df[c].isna().all():
            continue
        words = df[c].dropna().astype(str).str.strip().str.lower()
        if words.isin(YES_WORDS | NO_WORDS).all():
            out[c] = words.isin(YES_WORDS).astype("float64").reindex(df.index)
    return out


def _customers(
    p: inf.Profile, id_col: str | None = None, attributes: list[str] | None = None
) -> inf.Guess:
    """A customer table's roles, as the clustering stage assigns them (module docstring),
    the features to list, the value column and the clustering method."""
    todo: list[str] = []
    spec = _customer_spec(p, id_col, attributes, todo)
    df, quality = _load(p, spec)
    df = _answers_as_numbers(df)
    consent, opt_out = consent_columns(df)
    outcomes = [c for c in infer_outcomes(df) if c not in consent + opt_out]
    num, cat = default_features(df, exclude=[*outcomes, *consent, *opt_out])
    codes = _codes(df, num)
    num = [c for c in num if c not in codes]
    cat = [*codes, *cat]
    prepared = prepare(df, num, cat, f"customers ({p.path.name})")
    num, cat = prepared.numeric, prepared.categorical
    value, derive, value_why = value_choice(df, num)
    declared = Declared(num, cat, tuple(outcomes), False, value or "", consent=tuple(consent[:1]))
    table = feature_table(df, prepared, declared)
    binary = [c for c in outcomes if set(df[c].dropna().unique()) <= {0, 1}]
    why = _customer_why(table, binary, codes)
    _consent_roles(consent, opt_out, why, todo)
    why.update({k: v for k, v in _date_why(p, quality).items() if k in why})
    why.pop("customer_id", None)
    if id_col:
        why[id_col] = f"customer id: one row per id ({len(df):,} ids)"
    spec["outcomes"] = outcomes
    if derive:
        spec["derive"] = derive
    left = {r.feature: why[r.feature] for r in table.itertuples() if not r.used and r.role != "id"}
    left = {k: v for k, v in left.items() if k not in outcomes and k not in consent[:1]}
    todo += [
        f"{c}: left out by segkit's default rule (a purchase-history name); add it to "
        "cluster.features if it is an attribute of yours"
        for c in table.loc[table["role"] == "summary", "feature"]
    ]
    if not value:
        todo.append(f"cluster.value: {value_why}; set it to the column that measures value")
    extra: dict[str, Any] = {
        "features": num,
        "categorical": cat,
        "value": value,
        "value_why": value_why,
    }
    extra["method"] = "kprototypes" if cat else "kmeans"
    extra["consent"] = consent[0] if consent else None
    extra["customers"] = len(df)
    ids = f"id {id_col}" if id_col else "no id column (rows numbered)"
    summary = (
        f"a customer table: {len(df):,} customers, {ids}; {len(num) + len(cat)} features, "
        f"{len(outcomes)} outcomes, {len(left)} columns left out; value: "
        f"{value or 'none (segments ordered by size)'}"
    )
    return inf.Guess("customers", p, spec, why, left, todo, summary, extra)


# --------------------------------------------------------------------------- experiment


def _experiment(p: inf.Profile) -> list[inf.Guess]:
    """The experiment's arm and outcomes, and its other columns as a customer table."""
    found = inf.arm_column(p)
    assert found is not None  # decide_shape checked
    arm, levels, outcomes = found
    cid = inf.id_column(p)
    id_col = cid.name if cid is not None and cid.distinct == cid.present else None
    outcomes = [c for c in outcomes if c != id_col]
    names = list(p.columns)
    after = names[names.index(arm.name) + 1 :]
    why = {arm.name: f"arm: {len(levels)} levels {levels}, named like an arm or a control"}
    for c in outcomes:
        col = p.columns[c]
        kind = "0/1" if col.is_binary else "numeric" if col.is_numeric else "yes/no, read as 1/0"
        where = "after the arm column" if c in after else "named like a result"
        why[c] = f"outcome: {kind}, {where}"
    spec: dict[str, Any] = {**p.options, "columns": {"arm": arm.name}, "outcomes": outcomes}
    if id_col:
        spec["columns"]["customer_id"] = id_col
        why[id_col] = f"customer id: one row per id ({p.columns[id_col].distinct:,} ids)"
    else:
        spec["id_from_row"] = True
    todo = [f"check that {outcomes} were measured after the assignment to {arm.name!r}"]
    extra = _abtest(p, levels, outcomes, todo)
    summary = (
        f"an experiment: {p.rows:,} customers, arm {arm.name} ({', '.join(levels)}), "
        f"outcomes {', '.join(outcomes)}; control {extra['control']}"
    )
    exp = inf.Guess("experiment", p, spec, why, {}, todo, summary, extra)
    attrs = [c for c in names if c not in (arm.name, id_col, *outcomes)]
    return [exp, _customers(p, id_col, attrs)] if attrs else [exp]


def _abtest(p: inf.Profile, levels: list[str], outcomes: list[str], todo: list[str]) -> dict:
    """``abtest.control`` (segkit's own rule, else a level named like a control, else a
    guess marked TODO) and ``abtest.value_metric`` (a numeric outcome named like money)."""
    try:
        control = choose_control(levels, None)
        why = f"named like a control, among {levels}"
    except SegkitError:
        named = [v for v in levels if inf.CONTROL_NAME.search(v)]
        control = named[0] if named else levels[0]
        why = "named like a control" if named else "TODO: no level is named like a control"
        if not named:
            todo.append(f"abtest.control: {control!r} is a guess; set the control arm")
    money = [c for c in outcomes if not p.columns[c].is_binary and _MONEY.search(c)]
    return {
        "control": control,
        "control_why": why,
        "value_metric": money[0] if money else None,
    }


# --------------------------------------------------------------------------- entry point


def guess(path: str | Path) -> list[inf.Guess]:
    """Profile ``path``, decide its shape, and guess the roles of its columns.

    Returns one :class:`~segkit.scaffold.infer.Guess` per table spec: a transaction log or a
    customer table gives one; an experiment gives the experiment and, when the file has
    other columns (attributes), a customer table reading the same file.

    Raises
    ------
    SegkitError
        The file cannot be read, its shape cannot be decided, or it lacks a column its
        shape needs (naming the file and what was seen).
    """
    sheets = inf.data_sheets(path)
    if sheets is None:
        return _guess(inf.profile_file(path))
    return _workbook(path, sheets)


#: A sheet of fewer rows is not taken for a table when the workbook has bigger ones.
MIN_SHEET_ROWS = 20


def _workbook(path: str | Path, sheets: list[str]) -> list[inf.Guess]:
    """Each sheet of a workbook of several tables guessed as a file of its own (``sheet:``
    in its spec); sheets that are no table of segkit's (a cover sheet, a legend) are left
    out, said in a TODO of the first table."""
    profiles = [inf.profile_file(path, s) for s in sheets]
    biggest = max(p.rows for p in profiles)
    out: list[inf.Guess] = []
    skipped: list[str] = []
    for sheet, profile in zip(sheets, profiles, strict=True):
        if profile.rows < MIN_SHEET_ROWS <= biggest:
            rows = f"{profile.rows} row{'s' * (profile.rows != 1)}"
            skipped.append(f"sheet {sheet!r} left out: {rows}, too few for a table")
            continue
        try:
            found = _guess(profile)
        except SegkitError as exc:
            skipped.append(f"sheet {sheet!r} left out: {str(exc).split(': ', 1)[-1]}")
            continue
        for g in found:
            g.profile.why["sheet"] = f"sheet {sheet!r} of {len(sheets)} ({', '.join(sheets)})"
            g.spec["sheet"] = sheet
        out += found
    if not out:
        raise inf.init_error(Path(path), "no sheet is a table segkit reads: " + "; ".join(skipped))
    out[0].todo.extend(skipped)
    return out


def _guess(profile: inf.Profile) -> list[inf.Guess]:
    shape = inf.decide_shape(profile)
    if shape == "transactions":
        return [_transactions(profile)]
    if shape == "experiment":
        return _experiment(profile)
    cid = inf.id_column(profile)
    return [_customers(profile, cid.name if cid is not None else None)]


# --------------------------------------------------------------------------- across files


def _ids(g: inf.Guess) -> set[str] | None:
    """The customer ids of a guessed table as the loader reads them; None without ids."""
    col = (g.spec.get("columns") or {}).get("customer_id")
    if not col or g.spec.get("id_from_row"):
        return None
    expr = clean.id_expr(col)
    rows = g.profile.rel.aggregate(f"list(DISTINCT {expr}) FILTER (WHERE {expr} IS NOT NULL)")
    return set(rows.fetchall()[0][0] or [])


def _padded(ids: set[str], width: int) -> set[str]:
    return {i.zfill(width) if i.isdigit() and len(i) < width else i for i in ids}


def align_ids(tables: dict[str, inf.Guess]) -> None:
    """``id_width`` on a table whose ids are numbers written without the leading zeros the
    other table's carry (a CRM's '0000123456', a shop's '123456'): when fewer than half of
    its ids match as written and more than half once padded to the other's width, which
    every id of the other has. In place: the table's spec, reason and summary."""
    found: dict[str, set[str]] = {}
    for shape, g in tables.items():
        ids = _ids(g)
        if ids:
            found[shape] = ids
    for shape, ids in found.items():
        for other, theirs in found.items():
            widths = {len(i) for i in theirs}
            if other == shape or len(widths) != 1 or not all(i.isdigit() for i in theirs):
                continue
            width = widths.pop()
            before, after = len(ids & theirs), len(_padded(ids, width) & theirs)
            if before * 2 >= len(ids) or after * 2 <= len(ids):
                continue
            g = tables[shape]
            g.spec["id_width"] = width
            col = g.spec["columns"]["customer_id"]
            g.why["id_width"] = (
                f"the {other} table writes its ids with {width} digits, {col} without the "
                f"leading zeros: {after:,} of its {len(ids):,} ids match once padded, "
                f"{before:,} as written"
            )
            break
