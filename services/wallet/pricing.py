"""Prices: what a file will cost (the reservation) and what it did cost (the capture).

Pure functions over a `PriceList`. A reservation line records the unit price and add-ons it
was made with, so a later price change never alters what an open batch is charged.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from contracts.events import DetectOptions, FileSpec, MediaType


class PriceList(BaseModel):
    """Prices in micro-dollars (1 cent = 10,000). Defaults are documented in docs/pricing.md."""

    model_config = ConfigDict(frozen=True)

    audio_per_second: int = Field(default=1_000, ge=0)
    video_per_second: int = Field(default=2_500, ge=0)
    image_per_file: int = Field(default=10_000, ge=0)
    intelligence_per_file: int = Field(default=5_000, ge=0)
    source_tracing_per_file: int = Field(default=2_000, ge=0)
    identity_search_per_file: int = Field(default=2_000, ge=0)


class PricedFile(BaseModel):
    """One file's price, with the basis a capture needs later."""

    model_config = ConfigDict(frozen=True)

    detect_id: str
    filename: str
    media_type: MediaType
    duration_seconds: float | None
    billed_seconds: int  # whole seconds, rounded up; 0 for images
    unit_micros: int  # per second for audio/video, per file for images
    addons_micros: int
    cost_micros: int


class PricingError(ValueError):
    """A file cannot be priced (e.g. audio without a duration)."""


def billable_seconds(seconds: float | None) -> int:
    """Every started second is billed: 12.01 s costs 13 s."""
    if seconds is None:
        raise PricingError("audio and video need an analysed duration to be priced")
    return max(0, math.ceil(seconds - 1e-9))


def _addons(prices: PriceList, media_type: MediaType, options: DetectOptions) -> int:
    total = prices.intelligence_per_file if options.intelligence else 0
    if media_type in ("audio", "video"):
        if options.audio_source_tracing:
            total += prices.source_tracing_per_file
        if options.search_identity:
            total += prices.identity_search_per_file
    return total


def _unit_and_seconds(
    prices: PriceList, media_type: MediaType, seconds: float | None
) -> tuple[int, int, int]:
    """(unit price, billed seconds, media cost) for one file."""
    if media_type == "image":
        return prices.image_per_file, 0, prices.image_per_file
    unit = prices.audio_per_second if media_type == "audio" else prices.video_per_second
    billed = billable_seconds(seconds)
    return unit, billed, unit * billed


def price_file(prices: PriceList, file: FileSpec, options: DetectOptions) -> PricedFile:
    """The projected cost of one file, from its analysed duration (after regions and caps)."""
    seconds = file.analysed_seconds if file.analysed_seconds is not None else file.duration_seconds
    unit, billed, media_cost = _unit_and_seconds(prices, file.media_type, seconds)
    addons = _addons(prices, file.media_type, options)
    return PricedFile(
        detect_id=file.detect_id,
        filename=file.filename,
        media_type=file.media_type,
        duration_seconds=file.duration_seconds,
        billed_seconds=billed,
        unit_micros=unit,
        addons_micros=addons,
        cost_micros=media_cost + addons,
    )


def actual_cost(
    media_type: MediaType, unit_micros: int, addons_micros: int, seconds: float | None
) -> tuple[int, int]:
    """(cost, billed seconds) of a finished file at the prices it was reserved with."""
    if media_type == "image":
        return unit_micros + addons_micros, 0
    billed = billable_seconds(seconds)
    return unit_micros * billed + addons_micros, billed
