"""RFC 5322 / MIME messages, parsed once: envelope, body structure, part offsets, text.

Standard library only (`tests/test_layers.py`). The public API:

- `parse(data, *, internal=False) -> MessageMeta` — everything the store keeps.
- `section_range(parts_json, part, kind)`, `part_encoding(parts_json, part)`,
  `decode_transfer(data, cte)` — serving BODY[...] and BINARY[...] from byte ranges.
- `header_fields(header_block, names, exclude)` — BODY[HEADER.FIELDS (...)].
- `get_header(data, name)`, `header_end(data)`, `addresses(value)` — for submission.
"""

from pillarbox.message.addresses import Address, addresses, parse_address_list
from pillarbox.message.headers import get_header, header_end, header_fields
from pillarbox.message.parse import MalformedMessage, parse
from pillarbox.message.sections import part_encoding, resolve, section_range
from pillarbox.message.transfer import UnknownTransferEncoding, decode_transfer

__all__ = [
    "Address",
    "MalformedMessage",
    "UnknownTransferEncoding",
    "addresses",
    "decode_transfer",
    "get_header",
    "header_end",
    "header_fields",
    "parse",
    "parse_address_list",
    "part_encoding",
    "resolve",
    "section_range",
]
