"""Reading customer files from other systems: CSV or NDJSON, columns mapped to our fields.

The header decides: each column name is folded (case, spaces and punctuation dropped)
and looked up among the names other systems use for the field (Shopify's customer CSV,
WooCommerce, CRMs, spreadsheets). A "Default Address …" or "Address …" prefix names the
default address's fields. An explicit mapping (column -> field, `custom:<key>` for a
custom field, `ignore`) overrides the guess. Columns nothing maps to are reported, never
silently dropped.

Values are read the way people meant them in a spreadsheet: a leading `'` (kept by
Excel to stop it eating a phone's `+` or a ZIP's leading zero) is dropped, booleans are
yes/no/true/false/1/0/y/n. Validation proper is the write side's (resolvers/validate.py).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from resolvers.errors import UserErrorCode
from resolvers.mutations import Problem, Refused

DELIMITERS = ",;\t|"

# Our field -> the folded names other systems give it.
CUSTOMER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "first_name": ("firstname", "givenname", "forename", "first", "fname"),
    "last_name": ("lastname", "surname", "familyname", "last", "lname"),
    "full_name": ("name", "fullname", "customername", "contactname"),
    "company_name": (
        "company",
        "companyname",
        "organization",
        "organisation",
        "organizationname",
        "business",
        "businessname",
        "account",
        "accountname",
    ),
    "email": ("email", "emailaddress", "mail", "primaryemail", "emailaddress1"),
    "phone": ("phone", "phonenumber", "telephone", "tel", "mobile", "mobilephone", "cell"),
    "reference_id": (
        "referenceid",
        "customerid",
        "externalid",
        "otherid",
        "id",
        "legacyid",
        "customernumber",
        "clientid",
    ),
    "note": ("note", "notes", "comment", "comments", "remarks"),
    "kind": ("kind", "customerkind", "customertype", "type"),
    "tax_exempt": ("taxexempt", "taxexemption", "exempt"),
    "tax_code": ("taxcode", "exemptioncode", "taxid", "vatnumber", "vatid"),
    "tags": ("tags", "tag", "labels", "groups"),
    "email_marketing": (
        "acceptsemailmarketing",
        "acceptsmarketing",
        "emailmarketing",
        "emailoptin",
        "newsletter",
    ),
    "sms_marketing": ("acceptssmsmarketing", "smsmarketing", "smsoptin"),
}
ADDRESS_SYNONYMS: dict[str, tuple[str, ...]] = {
    "line1": ("address1", "addressline1", "street", "streetaddress", "line1", "address"),
    "line2": ("address2", "addressline2", "line2", "suite", "apartment"),
    "city": ("city", "town", "locality"),
    "region": ("provincecode", "province", "statecode", "state", "region", "county"),
    "postal_code": ("zip", "zipcode", "postalcode", "postcode", "zippostalcode"),
    "country": ("countrycode", "country", "countryregion"),
    "company": ("company",),
    "phone": ("phone",),
    "first_name": ("firstname",),
    "last_name": ("lastname",),
}
# "Default Address Zip", "Address City", "Billing Address1" (WooCommerce's billing_…).
ADDRESS_PREFIXES = ("defaultaddress", "address", "billingaddress", "billing")
# Columns other systems export that have no place here (totals are computed from orders);
# our own export's customer number (an import gives new numbers); the error report's own
# columns, which come back when its fixed rows are re-imported.
KNOWN_UNUSED = frozenset(
    ("totalspent", "totalorders", "ordercount", "lastorder", "createdat", "updatedat", "state")
) | frozenset(("number", "line", "column", "code", "message"))
ERROR_COLUMNS = ("line", "column", "code", "message")


def error_report_header(header: list[str]) -> list[str]:
    """The error report's header: the file's own, then line, column, code, message."""
    return [*header, *ERROR_COLUMNS]


def error_report_row(width: int, error: Any) -> list[Any]:
    """A rejected row (anything with raw, line, column, code, message) as the report writes
    it: its cells as they were, padded to the header, then why. Fixed, it imports as is."""
    cells = (list(error.raw) + [""] * width)[:width]
    return [*cells, error.line, error.column or "", error.code, error.message]


# Read without a column: everything above, for a mapping file's benefit.
FIELDS = frozenset(CUSTOMER_SYNONYMS) | {f"address.{name}" for name in ADDRESS_SYNONYMS}

_FOLD = re.compile(r"[^0-9a-z]+")
TRUE = frozenset(("yes", "y", "true", "t", "1", "on", "x"))
FALSE = frozenset(("no", "n", "false", "f", "0", "off", ""))


class FileRefused(Exception):
    """The file as a whole cannot be imported (format, encoding, header); nothing is written."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def fold(name: str) -> str:
    return _FOLD.sub("", name.lower())


_CUSTOMER_LOOKUP = {alias: f for f, aliases in CUSTOMER_SYNONYMS.items() for alias in aliases}
_ADDRESS_LOOKUP = {alias: f for f, aliases in ADDRESS_SYNONYMS.items() for alias in aliases}


def guess(column: str, custom_keys: frozenset[str] = frozenset()) -> str | None:
    """Our field for a column name (`address.city`, `custom:<key>`), or None."""
    name = fold(column)
    # This database's own custom field keys first: an admin named them on purpose (a
    # "newsletter" field is theirs, not the marketing-consent synonym).
    for key in custom_keys:
        if fold(key) == name:
            return f"custom:{key}"
    for prefix in ADDRESS_PREFIXES:
        if name.startswith(prefix) and name != prefix:
            rest = name[len(prefix) :]
            target = _ADDRESS_LOOKUP.get(rest)
            if target is not None:
                return f"address.{target}"
    target = _CUSTOMER_LOOKUP.get(name)
    if target is not None:
        return target
    # A bare address part ("City", "Zip", "Country"): the default address's.
    if name in _ADDRESS_LOOKUP and name not in ("company", "phone", "firstname", "lastname"):
        return f"address.{_ADDRESS_LOOKUP[name]}"
    return None


@dataclass
class ColumnMap:
    """Column index -> field; what was left out, and why."""

    header: list[str]
    fields: dict[int, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)  # nothing maps to them: reported
    unused: list[str] = field(default_factory=list)  # known, with no place here (totals)


def map_columns(
    header: list[str], mapping: dict[str, str] | None, custom_keys: frozenset[str]
) -> ColumnMap:
    """The header's columns mapped to fields; a mapping (column -> field) wins over guesses."""
    mapping = {fold(k): v for k, v in (mapping or {}).items()}
    result = ColumnMap(header=header)
    taken: dict[str, str] = {}
    for index, column in enumerate(header):
        explicit = mapping.get(fold(column))
        if explicit is not None:
            if explicit == "ignore":
                result.unused.append(column)
                continue
            target = _check_target(explicit, custom_keys, column)
        else:
            target = guess(column, custom_keys)
        if target is None:
            (result.unused if fold(column) in KNOWN_UNUSED else result.unknown).append(column)
            continue
        if target in taken:
            raise FileRefused(
                "DUPLICATE_COLUMN",
                f"Columns {taken[target]!r} and {column!r} both map to {target}; "
                "map one of them to 'ignore' in a mapping file.",
            )
        taken[target] = column
        result.fields[index] = target
    if not result.fields:
        raise FileRefused(
            "NO_KNOWN_COLUMN",
            "No column of the header is one we know (e.g. Email, First Name, Phone); "
            "give a mapping file.",
        )
    return result


def _check_target(target: str, custom_keys: frozenset[str], column: str) -> str:
    if target in FIELDS:
        return target
    if target.startswith("custom:") and target.removeprefix("custom:") in custom_keys:
        return target
    raise FileRefused(
        "UNKNOWN_FIELD",
        f"The mapping sends {column!r} to {target!r}, which is no field: use one of "
        f"{', '.join(sorted(FIELDS))}, custom:<key> or ignore.",
    )


@dataclass
class Row:
    """One record as read: its first line in the file, and its values by column."""

    line: int
    raw: list[str]  # as in the file, for the error report
    values: dict[str, str]  # field -> text (cleaned of spreadsheet quirks)


def unquote(value: str) -> str:
    """A spreadsheet's text marker: `'+4930…`, `'02134` mean `+4930…`, `02134`."""
    value = value.strip()
    return value[1:].strip() if value.startswith("'") else value


KINDS = {
    "BUSINESS": ("business", "company", "organization", "organisation", "b2b", "corporate"),
    "INDIVIDUAL": ("individual", "person", "private", "consumer", "b2c", "personal"),
}
_KIND_LOOKUP = {alias: kind for kind, aliases in KINDS.items() for alias in aliases}


def kind(value: str, column: str) -> str:
    found = _KIND_LOOKUP.get(fold(value))
    if found is None:
        raise Refused(Problem([column], UserErrorCode.INVALID, "Use BUSINESS or INDIVIDUAL."))
    return found


def boolean(value: str, column: str) -> bool:
    folded = value.strip().lower()
    if folded in TRUE:
        return True
    if folded in FALSE:
        return False
    raise Refused(Problem([column], UserErrorCode.INVALID, "Use yes/no, true/false or 1/0."))


class _Prefixed(io.RawIOBase):
    """A binary stream with its already-read head in front again (uploads can't seek)."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def open_text(stream: IO[bytes]) -> tuple[str, str, IO[str]]:
    """('csv' | 'ndjson', the first 64 KB as text, the whole text) of a binary stream,
    refusing what is neither."""
    head = stream.read(64 * 1024)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileRefused("ENCODING", "The file is UTF-16: save it as CSV UTF-8 and try again.")
    if b"\x00" in head:
        raise FileRefused("NOT_TEXT", "The file is not a CSV or NDJSON text file.")
    # The head may end inside a character: the whole text is decoded strictly below.
    sample = head.decode("utf-8-sig", errors="ignore")
    if not sample.strip():
        raise FileRefused("EMPTY", "The file is empty.")
    kind = "ndjson" if sample.lstrip().startswith("{") else "csv"
    text = io.TextIOWrapper(
        io.BufferedReader(_Prefixed(head, stream)), encoding="utf-8-sig", newline=""
    )
    return kind, sample, text


def sniff_delimiter(head: str) -> str:
    """The delimiter of the header line: the most frequent of `,;\\t|` outside quotes."""
    first = []
    quoted = False
    for ch in head:
        if ch == '"':
            quoted = not quoted
        elif ch in "\r\n" and not quoted:
            break
        elif not quoted:
            first.append(ch)
    counts = {d: first.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class Reader:
    """Records of a CSV or NDJSON file, with their line numbers, as `Row`s."""

    def __init__(
        self,
        stream: IO[bytes],
        *,
        mapping: dict[str, str] | None = None,
        custom_keys: frozenset[str] = frozenset(),
    ) -> None:
        self.kind, head, self._text = open_text(stream)
        self._mapping = mapping
        self._custom_keys = custom_keys
        self.delimiter = ","
        self.columns: ColumnMap
        if self.kind == "csv":
            self.delimiter = sniff_delimiter(head)
            self._csv = csv.reader(self._text, delimiter=self.delimiter, strict=True)
            try:
                header = next(self._csv)
            except csv.Error as exc:
                raise FileRefused("NOT_CSV", f"The header cannot be read as CSV: {exc}.") from exc
            except UnicodeDecodeError as exc:
                raise FileRefused("ENCODING", "The file is not UTF-8 text.") from exc
            self.columns = map_columns([h.strip() for h in header], mapping, custom_keys)
        else:
            self._lines = iter(self._text)
            self._line = 0
            first = self._next_object()
            if first is None:
                raise FileRefused("EMPTY", "The file has no records.")
            self._pending: tuple[int, dict] | None = first
            self.columns = map_columns(list(first[1]), mapping, custom_keys)

    def _next_object(self) -> tuple[int, dict] | None:
        for text in self._lines:
            self._line += 1
            if not text.strip():
                continue
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise FileRefused(
                    "NOT_NDJSON", f"Line {self._line} is not a JSON object: {exc}."
                ) from exc
            if not isinstance(value, dict):
                raise FileRefused("NOT_NDJSON", f"Line {self._line} is not a JSON object.")
            return self._line, value
        return None

    def __iter__(self) -> Iterator[Row]:
        try:
            if self.kind == "csv":
                yield from self._csv_rows()
            else:
                yield from self._ndjson_rows()
        except UnicodeDecodeError as exc:
            raise FileRefused("ENCODING", "The file is not UTF-8 text.") from exc

    def _csv_rows(self) -> Iterator[Row]:
        fields = self.columns.fields
        line = self._csv.line_num + 1
        while True:
            try:
                raw = next(self._csv)
            except StopIteration:
                return
            except csv.Error as exc:
                raise FileRefused("NOT_CSV", f"Line {line}: {exc}.") from exc
            start, line = line, self._csv.line_num + 1
            if not any(cell.strip() for cell in raw):
                continue  # a blank line
            values = {target: unquote(raw[i]) for i, target in fields.items() if i < len(raw)}
            yield Row(start, raw, values)

    def _ndjson_rows(self) -> Iterator[Row]:
        header = self.columns.header
        index = {name: i for i, name in enumerate(header)}
        while True:
            item = self._pending if self._pending is not None else self._next_object()
            self._pending = None
            if item is None:
                return
            line, obj = item
            raw = ["" if obj.get(name) is None else _text(obj.get(name)) for name in header]
            extra = [k for k in obj if k not in index]
            if extra:  # keys the first record did not have: map them too
                for key in extra:
                    index[key] = len(header)
                    header.append(key)
                    target = (
                        _check_target(self._mapping[key], self._custom_keys, key)
                        if (self._mapping and key in self._mapping)
                        else guess(key, self._custom_keys)
                    )
                    if target is None:
                        self.columns.unknown.append(key)
                    elif target not in self.columns.fields.values():
                        self.columns.fields[index[key]] = target
                    raw.append(_text(obj[key]))
            values = {
                target: unquote(raw[i]) for i, target in self.columns.fields.items() if i < len(raw)
            }
            yield Row(line, raw, values)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)
