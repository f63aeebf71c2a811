"""Words segkit reads in data: yes/no answers, in the languages of
:mod:`segkit.scaffold.infer`'s column names (English, German, French, Spanish, Italian,
Portuguese, Dutch). Compared lower-cased, after stripping blanks."""

from __future__ import annotations

#: "Yes" in an outcome (read as 1), a consent column or a two-level attribute.
YES_WORDS = frozenset("yes y true t ja j oui si sí sim s wahr vrai verdadero vero waar".split())
#: "No" in an outcome (read as 0) or a two-level attribute.
NO_WORDS = frozenset("no n false f nein non não nao nee falsch faux falso onwaar".split())

#: A customer id that stands for no one in particular: shops write it for guest checkouts
#: (WooCommerce's customer 0), CRMs for unknown customers. Compared lower-cased, trimmed.
PLACEHOLDER_IDS = frozenset(
    "0 -1 - -- ? n/a na none null nan guest gast invité invite invitado ospite anonymous "
    "anonym anon unknown unbekannt inconnu desconocido sconosciuto onbekend".split()
)
