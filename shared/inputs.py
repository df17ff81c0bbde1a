"""Field types for request bodies that take JSON types literally.

FastAPI validates bodies in pydantic's lax Python mode, which turns ``"1"`` into 1, ``"true"`` into True and
``0`` into 1970-01-01T00:00:00Z. A body that says something else than its schema is a client bug worth a 422,
not a guess: these types accept only what the OpenAPI document says (the contract fuzzing in
tests/security/test_fuzz.py sends exactly such data).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, Field, StrictBool, StrictInt


def _text_only(value: Any) -> Any:
    if isinstance(value, int | float):  # bool is an int too
        raise ValueError("must be an ISO 8601 string, not a number")
    return value


_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _iso_text_only(value: Any) -> Any:
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("must be an ISO 8601 date-time with an offset, not a number")
    return value


#: true or false, not "true", 1 or "yes".
JsonBool = StrictBool
#: An integer, not "1" nor 1.0.
JsonInt = StrictInt
#: A number (an integer is one), not "1.5".
JsonFloat = Annotated[float, Field(strict=True)]
#: An ISO 8601 date-time string with an offset, not a Unix timestamp.
JsonAwareDatetime = Annotated[AwareDatetime, BeforeValidator(_text_only)]
#: The same for a query parameter (always a string): "0.5" is not a Unix timestamp.
QueryAwareDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_text_only)]
#: An ISO 8601 date string (YYYY-MM-DD), not a number.
JsonDate = Annotated[date, BeforeValidator(_text_only)]
