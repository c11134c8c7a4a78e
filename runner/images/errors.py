"""The one exception type of `runner.images`: every failure a user sees is an `ImageError` of one line."""

from __future__ import annotations


class ImageError(Exception):
    """A bad reference, a corrupt or hostile blob, a registry refusal, a missing image.

    The message is a single line meant for the user: it names the image, blob or path at fault and,
    where there is one, what to do next. Nothing half-written is left behind when one is raised.
    Line breaks in what it quotes (a server's answer, a library's message) are folded into spaces.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
