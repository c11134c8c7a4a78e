"""Row ids in URLs: the tables' ids are SQL INTEGERs (32-bit on PostgreSQL), so a larger number in a
path is a 422 from validation, never a database error (a 500) or an OverflowError from the driver."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

MAX_ID = 2**31 - 1
RowId = Annotated[int, Path(ge=0, le=MAX_ID)]
