"""Global IDs: base64 of `TypeName:key`, the key a row's bigint primary key.

The one decoder, for both read paths: `decode_id` (an ID of given types) serves the
resolvers and the compiled roots `customer`/`order`; `decode_global_id` (any type) the
compiled `node`/`nodes`; `node_key` the keys relay hands `node`/`nodes` on the
field-by-field path (schema.base.NodeIds). A key PostgreSQL cannot compare with a bigint
is bad input here, not an error mid-query.
"""

from __future__ import annotations

import re

from strawberry import relay

from resolvers.errors import BadUserInput

# ASCII digits only: int() would also take " 1", "1_0", "+1" and other scripts' digits.
_KEY = re.compile(r"-?[0-9]{1,19}")
_BIGINT = range(-(2**63), 2**63)


def node_key(node_id: str, argument: str, value: object = None) -> int:
    """The primary key in a global ID's node id part."""
    if isinstance(node_id, str) and _KEY.fullmatch(node_id) and int(node_id) in _BIGINT:
        return int(node_id)
    shown = node_id if value is None else value
    raise BadUserInput(f"'{argument}' is not a valid global ID: {shown!r}.", argument=argument)


def decode_global_id(value: object, argument: str) -> tuple[str, int]:
    """(type name, primary key) of a global ID; BadUserInput unless well-formed."""
    try:
        gid = relay.GlobalID.from_id(value)  # type: ignore[arg-type]
    except Exception as exc:  # GlobalIDValueError, or a value that is no string
        raise BadUserInput(
            f"'{argument}' is not a valid global ID: {value!r}.", argument=argument
        ) from exc
    return gid.type_name, node_key(gid.node_id, argument, value)


def _article(word: str) -> str:
    return "an" if word[:1].upper() in "AEIOU" else "a"


def decode_id(value: object, expected: str | tuple[str, ...], argument: str) -> int:
    """Decode a global ID, refusing malformed IDs and IDs of another type."""
    expected = (expected,) if isinstance(expected, str) else expected
    type_name, pk = decode_global_id(value, argument)
    if type_name not in expected:
        raise BadUserInput(
            f"'{argument}' is {_article(type_name)} {type_name} ID; expected"
            f" {' or '.join(expected)}.",
            argument=argument,
        )
    return pk
