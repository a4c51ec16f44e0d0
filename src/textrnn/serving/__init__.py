"""The HTTP service: app factory, request/response schemas, predictor, settings.

``load_models`` reads the champions under models/ once; ``create_app`` serves what it was given.
"""

from __future__ import annotations

from pathlib import Path

from textrnn.serving.app import create_app
from textrnn.serving.generator import TextGenerator, load_generator
from textrnn.serving.loading import champion_path, find_champion
from textrnn.serving.predictor import SentimentPredictor
from textrnn.serving.settings import Limits, ServingSettings

__all__ = ["Limits", "SentimentPredictor", "ServingSettings", "TextGenerator", "create_app",
           "load_models"]


def load_models(models_dir: Path) -> tuple[SentimentPredictor, TextGenerator | None]:
    """The champion sentiment model (required) and the champion charlm model (when one exists),
    loaded, checked and warmed; a missing or unreadable one is a UserError naming the file."""
    sentiment = SentimentPredictor.load(find_champion(models_dir, "sentiment"))
    generator = None
    if champion_path(models_dir, "charlm").exists():
        generator = load_generator(find_champion(models_dir, "charlm"))
    return sentiment, generator
