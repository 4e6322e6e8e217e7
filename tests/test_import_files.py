"""Reading other systems' customer files: formats, delimiters, headers, spreadsheet quirks."""

from __future__ import annotations

import io

import pytest

from resolvers.imports import FileRefused, Reader, guess, unquote

# Shopify's customer export (Customers > Export, CSV for Excel or plain CSV), as is.
SHOPIFY = (
    "Customer ID,First Name,Last Name,Email,Accepts Email Marketing,Default Address Company,"
    "Default Address Address1,Default Address Address2,Default Address City,"
    "Default Address Province Code,Default Address Country Code,Default Address Zip,"
    "Default Address Phone,Phone,Accepts SMS Marketing,Total Spent,Total Orders,Note,"
    "Tax Exempt,Tags\n"
    "'7012345678901,Zoë,Müller,zoe@example.de,yes,,Hauptstraße 5,,Berlin,BE,DE,'10115,"
    '\'+49 30 1234567,\'+49 30 1234567,no,120.50,3,"Likes, commas\nand lines",no,"vip, b2b"\n'
)


def read(text: str | bytes, **kw) -> Reader:
    data = text.encode() if isinstance(text, str) else text
    return Reader(io.BytesIO(data), **kw)


def test_shopify_export_maps_every_column_without_a_mapping():
    reader = read(SHOPIFY)
    fields = {reader.columns.header[i]: f for i, f in reader.columns.fields.items()}
    assert fields["Customer ID"] == "reference_id"
    assert fields["Default Address Province Code"] == "address.region"
    assert fields["Default Address Country Code"] == "address.country"
    assert fields["Default Address Zip"] == "address.postal_code"
    assert fields["Default Address Phone"] == "address.phone"
    assert fields["Default Address Company"] == "address.company"
    assert fields["Phone"] == "phone" and fields["Tax Exempt"] == "tax_exempt"
    assert fields["Accepts Email Marketing"] == "email_marketing"
    assert reader.columns.unknown == []
    assert reader.columns.unused == ["Total Spent", "Total Orders"]  # reported, not dropped
    (row,) = list(reader)
    assert row.line == 2
    assert row.values["reference_id"] == "7012345678901"  # the leading ' is Excel's
    assert row.values["address.postal_code"] == "10115"
    assert row.values["phone"] == "+49 30 1234567"
    assert row.values["note"] == "Likes, commas\nand lines"
    assert row.values["first_name"] == "Zoë"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_delimiters_and_bom(delimiter, bom):
    text = delimiter.join(["E-mail", "Given Name", "Zip", "Organization"]) + "\r\n"
    text += delimiter.join(["a@example.com", "Ada", "'02134", '"Acme; Inc, | Ltd"']) + "\r\n"
    reader = read(bom + text.encode())
    assert reader.delimiter == delimiter
    (row,) = list(reader)
    assert row.values == {
        "email": "a@example.com",
        "first_name": "Ada",
        "address.postal_code": "02134",
        "company_name": "Acme; Inc, | Ltd",
    }


def test_line_numbers_count_lines_inside_quoted_fields_and_skip_blank_lines():
    text = 'email,note\na@x.io,"one\ntwo\nthree"\n\nb@x.io,plain\n'
    rows = list(read(text))
    assert [(r.line, r.values["email"]) for r in rows] == [(2, "a@x.io"), (6, "b@x.io")]


def test_ndjson_records_map_like_a_header():
    text = (
        '{"email": "a@x.io", "firstName": "Ada", "tags": ["x", "y"], "taxExempt": true}\n'
        "\n"
        '{"email": "b@x.io", "zip": "10115", "mystery": 1}\n'
    )
    reader = read(text)
    assert reader.kind == "ndjson"
    rows = list(reader)
    assert rows[0].line == 1 and rows[1].line == 3
    assert rows[0].values["tags"] == "x, y" and rows[0].values["tax_exempt"] == "true"
    assert rows[1].values["address.postal_code"] == "10115"
    assert reader.columns.unknown == ["mystery"]


def test_mapping_overrides_and_custom_fields_by_key():
    text = "Kundennummer,Mail,Lieblingsfarbe,Loyalty Tier\n42,a@x.io,blau,gold\n"
    reader = read(
        text,
        mapping={"Kundennummer": "reference_id", "Mail": "email", "Lieblingsfarbe": "ignore"},
        custom_keys=frozenset({"loyalty_tier"}),
    )
    (row,) = list(reader)
    assert row.values == {"reference_id": "42", "email": "a@x.io", "custom:loyalty_tier": "gold"}
    assert reader.columns.unused == ["Lieblingsfarbe"]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "EMPTY"),
        ("email,name\n".encode("utf-16"), "ENCODING"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NOT_TEXT"),
        ("Präferenz,Farbe\nja,rot\n".encode("latin-1"), "ENCODING"),
        (b"colour,size\nred,L\n", "NO_KNOWN_COLUMN"),
        (b"email,E-Mail Address\na,b\n", "DUPLICATE_COLUMN"),
        (b'{"email": "a@x.io"}\n[1, 2]\n', None),
    ],
)
def test_files_that_cannot_be_imported_are_refused_whole(data, code):
    if code is None:  # the second record is no object: refused when reached
        with pytest.raises(FileRefused) as refused:
            list(read(data))
        assert refused.value.code == "NOT_NDJSON"
        return
    with pytest.raises(FileRefused) as refused:
        list(read(data))
    assert refused.value.code == code


def test_a_mapping_to_an_unknown_field_is_refused():
    with pytest.raises(FileRefused) as refused:
        read("a,b\n1,2\n", mapping={"a": "shoe_size"})
    assert refused.value.code == "UNKNOWN_FIELD"


def test_guesses_and_unquote():
    assert guess("E-Mail Address") == "email"
    assert guess("first_name") == "first_name"
    assert guess("Postal Code") == "address.postal_code"
    assert guess("Address City") == "address.city"
    assert guess("billing_address_1") == "address.line1"
    assert guess("External ID") == guess("Other ID") == "reference_id"
    assert guess("State") == "address.region" and guess("Country") == "address.country"
    assert guess("Favourite Colour") is None
    assert unquote("  '+1 555 0100 ") == "+1 555 0100"
