"""What a sync fetches: which finished runs get details, and what is kept of a run."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines import defaults
from pipelines.recoup.transform import DEFAULT_LIMITS, Limits

DETAIL_MODES = ("all", "failed", "none")


@dataclass
class FetchOptions:
    """What a sync asks for and keeps of each account's runs; a page mark records them."""

    details: str = defaults.DETAILS  # which finished runs get a details fetch: all, failed, none
    keep_private: bool = False  # store payload and output
    limits: Limits = DEFAULT_LIMITS  # how large a run and its free-form fields may be

    def __str__(self) -> str:  # a page read under other options may need reading again
        return f"details={self.details} private={'yes' if self.keep_private else 'no'}"
